"""`geoloc import`: published checkpoints (G3, GeoCLIP) turned into the project's own artifacts."""
