"""The place-texts step (MP16-Pro text generation), with a preview of what it wrote."""

from __future__ import annotations

from geoloc_core.pipeline.outcome import Meta, StepContext, StepOutcome
from geoloc_core.pipeline.tables import markdown_preview
from geoloc_core.steps.texts import build_place_texts, place_texts_path
from geoloc_core.text.table import read_place_texts

PREVIEW_ROWS = 20


def place_texts(ctx: StepContext) -> StepOutcome:
    paths = ctx.paths
    summary = build_place_texts(paths, ctx.section("text"))
    ctx.run.log_metrics(summary)
    sample = read_place_texts(place_texts_path(paths)).head(PREVIEW_ROWS)
    sample_file = place_texts_path(paths).with_name("place_texts_sample.csv")
    sample.to_csv(sample_file, index=False, lineterminator="\n")
    ctx.run.log_artifact(sample_file, "texts")
    ctx.log(f"place texts: {summary}")
    extra = {
        "preview": Meta("md", markdown_preview(sample)),
        "path": Meta("path", str(place_texts_path(paths))),
    }
    return StepOutcome(summary, [place_texts_path(paths)], metadata=extra)
