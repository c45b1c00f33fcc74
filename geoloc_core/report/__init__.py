"""The evaluation report: tables, pictures and plot data built from the metrics a run wrote.

Each module has one job: `published` (numbers from papers, never re-run here), `labels`
(which settings produced a row), `runs` (per-image errors of every compared run), `cdf` (plot
data for DVC), `coastlines` and `figures` (pictures), `tables`, `markdown` and `html` (output).
"""
