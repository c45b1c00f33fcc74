"""Simple baselines every trained model must beat: a seeded random reference coordinate and
1-nearest-neighbour retrieval over raw colour features, segmentation class histograms and the
frozen backbone's pooled embedding. Nothing here imports dagster; the step that scores them is
geoloc_core/steps/baselines.py.
"""

METHODS = ("random", "raw_pixels", "label_histogram", "frozen_backbone")
