"""The one error type of the segmentation cache, so callers can tell it from bugs."""


class SegmentationError(ValueError):
    """A setting, manifest or cache file that cannot be used; the message names it and the fix."""
