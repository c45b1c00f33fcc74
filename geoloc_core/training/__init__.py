"""Training loops: seeded, resumable, reporting through callbacks (no tracking imports here)."""
