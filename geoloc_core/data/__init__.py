"""Data: manifests (one schema for every source) and image decoding that survives real files."""
