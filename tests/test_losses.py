"""The contrastive losses against hand computations: plain symmetric InfoNCE when each row has one
positive, targets spread evenly over same-place (or same-caption) positives otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geoloc_core.models.losses import multi_positive_info_nce, same_id_mask, same_place_mask

LOGITS = [[2.0, 0.5, -1.0], [0.0, 1.5, 0.3], [-0.5, 1.0, 0.8]]
KM_PER_DEGREE = 6371.0088 * math.pi / 180.0  # along a meridian of the mean-radius sphere


def log_softmax_row(row: list[float], i: int) -> float:
    """log(exp(row[i]) / sum_j exp(row[j])), by plain arithmetic."""
    return row[i] - math.log(sum(math.exp(v) for v in row))


def hand_loss(logits: list[list[float]], positives: list[list[int]]) -> float:
    """Both directions: each row's mean -log p over its positives, averaged over rows."""
    columns = [list(col) for col in zip(*logits, strict=True)]
    positives_t = [list(col) for col in zip(*positives, strict=True)]

    def one_way(rows: list[list[float]], mask: list[list[int]]) -> float:
        losses = []
        for i, row in enumerate(rows):
            chosen = [j for j, p in enumerate(mask[i]) if p]
            losses.append(-sum(log_softmax_row(row, j) for j in chosen) / len(chosen))
        return sum(losses) / len(losses)

    return (one_way(logits, positives) + one_way(columns, positives_t)) / 2


def test_one_positive_per_row_is_plain_symmetric_info_nce() -> None:
    eye = [[int(i == j) for j in range(3)] for i in range(3)]
    found = multi_positive_info_nce(torch.tensor(LOGITS), torch.tensor(eye, dtype=torch.bool))
    expected = hand_loss(LOGITS, eye)
    # by hand, row 0: -(2 - log(e^2 + e^0.5 + e^-1)) = 0.2413; the six terms average to 0.5043
    assert expected == pytest.approx(0.50429, abs=1e-5)
    assert found.item() == pytest.approx(expected, rel=1e-6)


def test_same_place_positives_share_the_target() -> None:
    same_place = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]  # views 0 and 1 of one place
    found = multi_positive_info_nce(torch.tensor(LOGITS), torch.tensor(same_place).bool())
    expected = hand_loss(LOGITS, same_place)
    assert found.item() == pytest.approx(expected, rel=1e-6)
    plain = multi_positive_info_nce(torch.tensor(LOGITS), torch.eye(3, dtype=torch.bool))
    assert found.item() != pytest.approx(plain.item(), rel=1e-3)


def test_identical_partners_are_not_pushed_apart() -> None:
    """Two views of one place share one GPS embedding, so their logit columns are equal. As
    positives of each other they are left where they are (zero gradient); as negatives, plain
    InfoNCE would push apart what cannot move apart."""
    same_place = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]]).bool()

    def gradient(positives: torch.Tensor) -> torch.Tensor:
        logits = torch.tensor([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
        logits.requires_grad_(True)
        multi_positive_info_nce(logits, positives).backward()
        assert logits.grad is not None
        return logits.grad

    assert gradient(same_place).abs().max().item() < 1e-4
    # plain: d/dl00 = (p00 - 1) / 6 + (p00 - 1) / 6 with p00 = 1/2, so -1/6 on the diagonal
    assert gradient(torch.eye(3, dtype=torch.bool))[0, 0].item() == pytest.approx(-1 / 6, abs=1e-4)


def test_same_place_mask_follows_the_radius() -> None:
    north = [[0.0, 0.0], [0.9 / KM_PER_DEGREE, 0.0], [1.1 / KM_PER_DEGREE, 0.0], [45.0, 90.0]]
    mask = same_place_mask(torch.tensor(north, dtype=torch.float64), radius_km=1.0)
    assert mask.tolist() == [
        [True, True, False, False],  # 0.9 km away: same place; 1.1 km: not
        [True, True, True, False],  # 0.2 km between the second and third point
        [False, True, True, False],
        [False, False, False, True],
    ]
    alone = same_place_mask(torch.tensor(north, dtype=torch.float64), radius_km=0.0)
    assert torch.equal(alone, torch.eye(4, dtype=torch.bool))  # each is always its own positive


def test_same_place_mask_across_the_dateline() -> None:
    points = torch.tensor([[10.0, 179.999], [10.0, -179.999]], dtype=torch.float64)
    assert same_place_mask(points, radius_km=1.0).all()  # 0.22 km apart the short way round


def test_same_id_mask() -> None:
    mask = same_id_mask(torch.tensor([3, 5, 3, 7]))
    expected = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    assert np.array_equal(mask.numpy(), expected)
