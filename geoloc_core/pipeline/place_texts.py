"""The place-texts step (MP16-Pro text generation), with a preview of what it wrote."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.pipeline.tables import markdown_preview
from geoloc_core.steps.texts import build_place_texts
from geoloc_core.text.table import read_place_texts

PREVIEW_ROWS = 20


def place_texts(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    summary = build_place_texts(paths, ctx.section("text"))
    ctx.run.log_metrics(summary)
    sample = read_place_texts(paths.place_texts).head(PREVIEW_ROWS)
    sample_file = paths.place_texts.with_name("place_texts_sample.csv")
    sample.to_csv(sample_file, index=False, lineterminator="\n")
    ctx.run.log_artifact(sample_file, "texts")
    ctx.log(f"place texts: {summary}")
    extra = {
        "preview": Meta("md", markdown_preview(sample)),
        "path": Meta("path", str(paths.place_texts)),
    }
    return StepOutcome(summary, [paths.place_texts], metadata=extra)
