"""What the transformers providers share: loading a checkpoint by id (hub id or local folder,
the same call for pretrained and test weights), decoding and normalising a batch, and batched
inference down to a full-resolution label map (the model's own output resolution)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from geoloc_core.ade20k import NUM_CLASSES
from geoloc_core.data.images import load_rgb, normalize_pixels
from geoloc_core.data.loader import DecodedBatch, decode_batch
from geoloc_core.segmentation.errors import SegmentationError
from geoloc_core.segmentation.providers.base import ImageDecoder, Prediction, WorkItem

# outputs of the model -> (B, 150, h, w) class scores
ScoreFn = Callable[[Any], torch.Tensor]


class TransformersProvider:
    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        scores: ScoreFn,
        mean: Sequence[float],
        std: Sequence[float],
        input_resolution: int,
        device: torch.device,
        dtype: torch.dtype,
        model_id: str,
    ) -> None:
        self.name = name
        self.model = model.to(device=device, dtype=dtype).eval()
        self.scores = scores
        self.mean, self.std = list(mean), list(std)
        self.input_resolution = input_resolution
        self.device, self.dtype = device, dtype
        self.model_id = model_id

    def decoder(self) -> ImageDecoder:
        return ImageDecoder(
            partial(load_rgb, size=self.input_resolution),
            partial(normalize_pixels, mean=self.mean, std=self.std),
        )

    def predict(
        self, items: Sequence[WorkItem], decoded: DecodedBatch | None = None
    ) -> Prediction:
        """decoded: the batch as decoder() prepares it (by worker processes), else done here."""
        if decoded is None:
            how = self.decoder()
            pairs = [(item.id, item.image) for item in items]
            decoded = decode_batch(0, pairs, how.decode_one, how.finish)
        prediction = Prediction(positions=list(decoded.positions), failures=decoded.failures)
        if not decoded.positions:
            return prediction
        pixels = decoded.images.to(device=self.device, dtype=self.dtype, non_blocking=True)
        with torch.inference_mode():
            scores = self.scores(self.model(pixel_values=pixels))
            if scores.shape[1] != NUM_CLASSES:
                raise SegmentationError(
                    f"{self.model_id} scores {scores.shape[1]} classes, not ADE20K's "
                    f"{NUM_CLASSES}; use an ADE20K checkpoint for segmentation.model_id"
                )
            labels = scores.argmax(dim=1).to(torch.uint8).cpu().numpy()
        prediction.label_maps = list(labels)
        return prediction

    def describe(self) -> dict[str, str]:
        return {
            "provider": self.name,
            "model_id": self.model_id,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }


def load_checkpoint(
    model_id: str, model_class: type, model_type: str
) -> tuple[torch.nn.Module, list[float], list[float]]:
    """(model, pixel mean, pixel std) via from_pretrained; refuses a checkpoint of another
    architecture or label set instead of silently initialising random heads."""
    from transformers import AutoConfig, AutoImageProcessor

    try:
        config = AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        raise SegmentationError(
            f"cannot load segmentation.model_id {model_id!r} ({exc}); give a transformers "
            "checkpoint id that is downloaded or reachable, or a local checkpoint folder"
        ) from exc
    if config.model_type != model_type:
        raise SegmentationError(
            f"segmentation.model_id {model_id!r} is a {config.model_type} checkpoint, but "
            f"segmentation.provider expects {model_type}; change one of them"
        )
    if config.num_labels != NUM_CLASSES:
        raise SegmentationError(
            f"segmentation.model_id {model_id!r} predicts {config.num_labels} classes; the cache "
            f"stores ADE20K-150 ids, so use an ADE20K checkpoint"
        )
    model = model_class.from_pretrained(model_id, config=config)
    processor = AutoImageProcessor.from_pretrained(model_id)
    return model, list(processor.image_mean), list(processor.image_std)
