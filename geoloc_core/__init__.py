"""geoloc core library: plain functions over files and arrays; never imports dagster."""

__version__ = "0.1.0"
