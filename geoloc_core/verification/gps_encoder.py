"""Candidates' coordinates into the GPS space, where geo-verification compares them with the
image."""

from __future__ import annotations

import numpy as np
import torch

from geoloc_core.models.alignment import GeoAlignmentModel

GPS_BATCH = 65536


@torch.no_grad()
def encode_coordinates(model: GeoAlignmentModel, latlon: np.ndarray) -> np.ndarray:
    """Unit GPS embeddings of (n, 2) degrees with the trained model's location encoder."""
    chunks = [
        model.encode_gps(torch.from_numpy(latlon[s : s + GPS_BATCH].astype(np.float32))).numpy()
        for s in range(0, len(latlon), GPS_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)
