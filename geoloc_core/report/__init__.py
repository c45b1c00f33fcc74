"""The evaluation report: tables, pictures and plot data built from the metrics a run wrote.

Each module has one job: `published` (numbers from papers, never re-run here), `labels`
(which settings produced a row), `runs` (per-image errors of every compared run; the
predictions file's stage columns are the artifact catalogue's, geoloc_core/paths.py), `cdf`
(plot data for DVC), `coastlines` and `figures` (pictures), `tables`, `markdown` and `html`
(output).
"""
