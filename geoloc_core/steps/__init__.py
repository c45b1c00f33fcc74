"""Pipeline steps: each a plain function over files, called by a Dagster asset or the CLI."""
