"""The evaluation report: tables, pictures and plot data built from the metrics a run wrote.

Each module has one job: `published` (numbers from papers, never re-run here), `labels`
(which settings produced a row), `stage_columns` (where the predictions file keeps each
stage's own answer, also read by the metrics step), `runs` (per-image errors of every
compared run), `cdf` (plot data for DVC), `coastlines` and `figures` (pictures), `tables`,
`markdown` and `html` (output).
"""
