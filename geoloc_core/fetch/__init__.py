"""`geoloc fetch NAME`: the datasets and published weights of the full profile, downloaded from
the sources in catalogue.yaml (Hugging Face hub or plain HTTP), resumable, checksummed, pinned,
then a data report and `dvc add data/raw`. See docs/data.md, section "Fetching the real data".
"""
