"""Code versions that follow the code and the settings.

Dagster's staleness follows code versions, not run config, so each asset's code version is the
digest of the code its step runs plus a hash of exactly the params sections it reads (both from
the stage registry): editing `evaluation` marks metrics and report stale and nothing upstream,
and editing the re-rank's code marks rerank stale and nothing upstream.
"""

from collections.abc import Mapping
from typing import Any

from geoloc_core.params import sections_hash
from geoloc_core.pipeline.code_files import code_digest
from geoloc_core.pipeline.registry import stage_named


def code_version(asset_name: str, params: Mapping[str, Any]) -> str:
    stage = stage_named(asset_name)
    return f"{code_digest(stage.module)}-{sections_hash(params, stage.hashed_sections)}"
