"""Manifest validation with Great Expectations 1.x: per-row failures go to a quarantine report,
and a gate decides from the failure rate whether downstream steps may run."""
