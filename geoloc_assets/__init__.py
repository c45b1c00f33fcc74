"""Dagster definitions for geoloc: thin assets that call geoloc_core, plus checks and resources."""
