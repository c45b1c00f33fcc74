"""Contrastive losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where a row may have several positives.

    Several views of one place often share a batch; plain InfoNCE would push them apart as
    negatives. Targets spread evenly over each row's positives (the diagonal is always one).
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
