"""Alignment models: image (and later segmentation/text) embeddings aligned to GPS."""
