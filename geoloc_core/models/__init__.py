"""The geo-alignment model family (image-only, G3, DualGeo, DualGeo+text) and its parts."""
