"""Where inference runs: CUDA in half precision when present, else CPU in full precision."""

from __future__ import annotations

import torch

from geoloc_core.segmentation.errors import SegmentationError


def choose_device(requested: str) -> tuple[torch.device, torch.dtype]:
    """requested is segmentation.device: auto, cpu or cuda."""
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise SegmentationError(
            "segmentation.device=cuda but torch sees no CUDA device; use auto or cpu"
        )
    if requested == "cpu" or (requested == "auto" and not has_cuda):
        return torch.device("cpu"), torch.float32
    if requested not in ("auto", "cuda"):
        raise SegmentationError(f"segmentation.device={requested!r}: use auto, cpu or cuda")
    return torch.device("cuda"), torch.float16
