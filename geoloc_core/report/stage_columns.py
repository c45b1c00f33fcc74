"""Where the predictions file keeps what each stage alone would have predicted.

The verification step writes these columns beside its decision; the metrics and the report
read them to score the retrieval top-1 and the re-ranked top-1 as stages of their own.
"""

STAGE_COLUMNS: dict[str, tuple[str, str]] = {
    "retrieval": ("top1_lat", "top1_lon"),
    "rerank": ("rerank_lat", "rerank_lon"),
}
