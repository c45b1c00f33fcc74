"""Segmentation cache: the semantic view of every image (ADE20K-150 label map + class
histogram), computed once per setting, sharded by image id, resumable and checksummed.

Readers use `SegmentationCache` (cache.py); the pipeline step is `build_segmentation_shard`
(step.py). Nothing here imports dagster.
"""
