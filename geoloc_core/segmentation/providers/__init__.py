"""Segmentation providers behind one interface (base.SegmentationProvider), built by name."""

from __future__ import annotations

from geoloc_core.segmentation.providers.base import SegmentationProvider
from geoloc_core.segmentation.settings import SegmentationSettings


def make_provider(settings: SegmentationSettings) -> SegmentationProvider:
    """The provider segmentation.provider names; transformers is imported only when needed."""
    if settings.provider == "demo":
        from geoloc_core.segmentation.providers.demo import DemoProvider

        return DemoProvider(settings.condition_errors, settings.seed)
    from geoloc_core.segmentation.providers.device import choose_device

    device, dtype = choose_device(settings.device)
    if settings.provider == "segformer":
        from geoloc_core.segmentation.providers.segformer import load_segformer

        return load_segformer(settings.model_id, settings.input_resolution, device, dtype)
    from geoloc_core.segmentation.providers.mask2former import load_mask2former

    return load_mask2former(settings.model_id, settings.input_resolution, device, dtype)
