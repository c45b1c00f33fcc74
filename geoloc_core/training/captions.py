"""Place captions per image id (from the place_texts asset) and their frozen text embeddings.

MP16-Pro captions come from a template over place names, so most images share a caption with
many others: each distinct caption goes through the text tower once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.encoders.clip_towers import ClipTowers
from geoloc_core.encoders.text import embed_texts


def captions_for(path: Path, ids: Sequence[str]) -> list[str]:
    """The caption of every id, in order; ValueError naming the first id without one."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} is missing: materialize the place_texts asset first")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["id", "caption"])
    by_id = dict(zip(table["id"], table["caption"], strict=True))
    missing = [i for i in ids if not by_id.get(i)]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no caption in {path}, e.g. {missing[:3]}: "
            "re-materialize place_texts after reference_manifest"
        )
    return [by_id[i] for i in ids]


def caption_index(captions: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(distinct captions, sorted; each sample's row among them)."""
    distinct, inverse = np.unique(np.asarray(captions, dtype=str), return_inverse=True)
    return distinct.tolist(), inverse.astype(np.int64)


def caption_embeddings(
    towers: ClipTowers, captions: Sequence[str], batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(U, Dt) unit embeddings of the distinct captions and each sample's row among them."""
    distinct, index = caption_index(captions)
    return embed_texts(towers, distinct, batch_size), index
