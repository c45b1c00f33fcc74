"""The pipeline's steps as the orchestrator sees them: one declaration each (registry.py), and
the code that runs each step for one partition and says what it wrote (the other modules).

Nothing here imports dagster: geoloc_assets turns each declaration into an asset, the DVC
renderer turns each group into a stage, and both stay in step because both read the registry.
"""
