"""The whole of params.yaml as one typed tree: section name -> its model, the root model that
holds them (unknown sections refused, settings checked together), and the JSON Schema that
editors use to complete and check params.yaml.

Regenerate the committed schema with `python -m geoloc_core.settings_tree` (or `geoloc schema`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from geoloc_core.baselines.settings import BaselineSettings
from geoloc_core.data.sources.settings import BenchmarkSettings, DataSettings
from geoloc_core.demo_world.generate import DemoWorldConfig
from geoloc_core.encoders.settings import BackboneConfig, FeaturesConfig
from geoloc_core.geo.settings import EvaluationSettings
from geoloc_core.lmm.settings import LmmSettings
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.models.variants import retrieval_parts, variant_spec
from geoloc_core.params import ParamsError
from geoloc_core.rerank.settings import RerankSettings
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.settings import EmbeddingSettings, RetrievalSettings
from geoloc_core.section_model import SectionModel, from_params
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.settings_refusal import refusal_line
from geoloc_core.text.settings import TextSettings
from geoloc_core.tracking_settings import TrackingSettings
from geoloc_core.validation.settings import ManifestSettings
from geoloc_core.verification.settings import VerificationSettings

SCHEMA_FILE = "params.schema.json"


class CoreParams(BaseModel):
    """Every section of params.yaml, one typed model each, in params.yaml's order (the sections
    a step adds itself are declared with it in the stage registry: ParamsTree below)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="geoloc params.yaml")

    data: DataSettings
    demo_world: DemoWorldConfig
    manifest: ManifestSettings
    text: TextSettings
    segmentation: SegmentationSettings
    backbone: BackboneConfig
    features: FeaturesConfig
    model: ModelConfig
    train: TrainConfig
    embeddings: EmbeddingSettings
    index: IndexSettings
    retrieval: RetrievalSettings
    rerank: RerankSettings
    lmm: LmmSettings
    verification: VerificationSettings
    baselines: BaselineSettings
    benchmarks: BenchmarkSettings
    evaluation: EvaluationSettings
    tracking: TrackingSettings

    @model_validator(mode="after")
    def _parts_the_variant_computes(self) -> CoreParams:
        """embeddings.parts may only name vectors that model.variant computes."""
        retrieval_parts(self.model.variant, self.embeddings.parts)
        return self

    @model_validator(mode="after")
    def _segmentation_tokens_fit_the_label_maps(self) -> CoreParams:
        """A dual-view variant cuts each stored label map into model.seg_grid cells per side."""
        side, grid = self.segmentation.output_resolution, self.model.seg_grid
        if variant_spec(self.model.variant).uses_segmentation and side % grid:
            raise ValueError(
                f"model.seg_grid={grid} must divide segmentation.output_resolution={side}: "
                f"model.variant={self.model.variant!r} cuts each label map into seg_grid cells "
                "per side"
            )
        return self


def _step_sections() -> dict[str, Any]:
    """The sections that steps declare in the stage registry, as fields of the root model."""
    from geoloc_core.pipeline.registry import STAGES
    from geoloc_core.pipeline.stage import resolve

    return {
        name: (resolve(model), ...) for stage in STAGES for name, model in stage.new_sections
    }


ParamsTree = create_model(
    "ParamsTree",
    __base__=CoreParams,
    __doc__="Every section of params.yaml, one typed model each.",
    **_step_sections(),
)

# Section name -> its model: the registry the Dagster config and the sweep test read.
SECTIONS: dict[str, type[SectionModel]] = {
    name: field.annotation for name, field in ParamsTree.model_fields.items()
}


def load_tree(params: Mapping[str, Any]) -> ParamsTree:
    """Every section typed and checked; ParamsError with one line for the first bad setting."""
    try:
        with from_params():
            return ParamsTree.model_validate(params)
    except ValidationError as exc:
        raise ParamsError(refusal_line(exc, ParamsTree, params)) from None


def params_schema() -> dict[str, Any]:
    """The JSON Schema of params.yaml: every key of every section required, none other allowed
    (so the models' defaults, the papers' values for code, are left out)."""
    schema = ParamsTree.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in definition:
            definition["required"] = list(definition["properties"])
            definition["additionalProperties"] = False
            for field in definition["properties"].values():
                field.pop("default", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(params_schema(), indent=2) + "\n"


def write_schema(root: Path) -> Path:
    """Writes params.schema.json at the project root; returns its path."""
    path = Path(root) / SCHEMA_FILE
    path.write_text(schema_text())
    return path


if __name__ == "__main__":
    from geoloc_core.params import find_root

    print(write_schema(find_root()))
