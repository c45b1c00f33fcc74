"""Trainable projection heads: a two-layer MLP from one space into another (G3's heads)."""

from __future__ import annotations

from torch import nn


def projection_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Per-sample MLP (no batch statistics), so a sample's output never depends on batch mates."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
