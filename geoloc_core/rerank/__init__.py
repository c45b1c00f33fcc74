"""Re-ranking of retrieved GPS candidates (DualGeo's geographic clustering)."""
