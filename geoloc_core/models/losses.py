"""Contrastive losses.

Difference from the papers: G3, GeoCLIP and DualGeo use plain symmetric InfoNCE, where only the
diagonal is a positive (GeoCLIP adds a queue of GPS negatives). Here a row may have several
positives: batch mates taken within `same_place_km` of each other (GPS terms) or sharing a
caption (the text term), because several views of one place often share a batch and their GPS
or caption embeddings are identical, so treating them as negatives would ask for the
impossible. With one positive per row this is exactly the papers' loss. No queue is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: temperature never below 0.01


@dataclass
class LossOutput:
    """A training step's loss: the total to minimise, each term, and the temperatures."""

    total: torch.Tensor
    terms: dict[str, float]  # each contrastive term's value
    temperatures: dict[str, float]


def multi_positive_info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE whose targets spread evenly over each row's positives.

    The diagonal must be positive (each sample matches its own partner).
    """
    targets = positives.float()
    row_targets = targets / targets.sum(dim=1, keepdim=True)
    col_targets = targets.t() / targets.t().sum(dim=1, keepdim=True)
    loss_rows = -(row_targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_cols = -(col_targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (loss_rows + loss_cols) / 2


def same_place_mask(latlon: torch.Tensor, radius_km: float) -> torch.Tensor:
    """Pairs closer than radius_km (haversine on the sphere; exactness is irrelevant here)."""
    lat = torch.deg2rad(latlon[:, 0])
    lon = torch.deg2rad(latlon[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = (
        torch.sin(dlat / 2) ** 2
        + torch.cos(lat)[:, None] * torch.cos(lat)[None, :] * torch.sin(dlon / 2) ** 2
    )
    dist = 2 * 6371.0088 * torch.asin(a.clamp(0, 1).sqrt())
    mask = dist < radius_km
    mask.fill_diagonal_(True)
    return mask


def same_id_mask(ids: torch.Tensor) -> torch.Tensor:
    """Pairs with equal ids (e.g. the same caption): their partners are the same vector."""
    return ids[:, None] == ids[None, :]
