"""The full profile's configuration on two real image files: ViT-L-14-quickgelu (random
weights, as weights cannot be downloaded here; production passes pretrained='openai' to the
same call), frozen, its features extracted once, then one training step of g3 and of dualgeo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geoloc_core.encoders.clip_towers import TowerSpec, build_clip, freeze
from geoloc_core.encoders.text import embed_texts
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.feature_cache import FeatureCache, write_shard
from geoloc_core.training.feature_extraction import WorkItem, extract_features
from geoloc_core.training.loop import LoopConfig, train

COORDS = np.array([[48.8584, 2.2945], [-33.8568, 151.2153]])
CAPTIONS = [
    "A street view photo taken in Paris, Ile-de-France, France",
    "A street view photo taken in Sydney, New South Wales, Australia",
]


class TwoLabelMaps:
    """Segmentation source of the two images (sky over building over road)."""

    def __init__(self, ids: list[str]):
        base = np.full((64, 64), 1, np.uint8)
        base[:20], base[50:] = 2, 6
        self.maps = {ids[0]: base, ids[1]: np.flipud(base).copy()}

    def load(self, ids):
        maps = np.stack([self.maps[i] for i in ids])
        return maps, np.zeros((len(ids), 150), np.float32)

    def ids(self):
        return sorted(self.maps)


@pytest.fixture(scope="module")
def full_profile(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    files = []
    for name in ("paris.jpg", "sydney.png"):
        pixels = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
        files.append(folder / name)
    torch.manual_seed(0)
    # production: pretrained="openai"
    towers = freeze(build_clip(TowerSpec("ViT-L-14-quickgelu", None)))
    assert towers.image_size == 224 and towers.embed_dim == 768
    items = [WorkItem(f.stem, f) for f in files]
    content = extract_features(
        towers, sorted(items, key=lambda i: i.id), token_grid=4, batch_size=2
    )
    text = embed_texts(towers, CAPTIONS)
    del towers
    cache_dir = folder / "features"
    meta = {
        "spec": {
            "architecture": "ViT-L-14-quickgelu",
            "pretrained": "openai",
            "token_grid": 4,
            "weights_sha256": "tag:openai",
        },
        "fingerprint": "full",
        "image_size": 224,
        "pooled_dim": 768,
        "token_dim": 768,
        "tokens": 16,
        "ids": content.ids,
    }
    write_shard(cache_dir, 0, 1, content, meta)
    return {"cache": FeatureCache(cache_dir), "ids": content.ids, "text": text, "dir": folder}


@pytest.mark.parametrize("variant", ["g3", "dualgeo"])
def test_one_training_step(full_profile, variant, tmp_path: Path):
    features: FeatureCache = full_profile["cache"]
    pooled, tokens = features.load(full_profile["ids"])
    assert pooled.dtype == np.float16 and pooled.shape == (2, 768) and tokens.shape == (2, 16, 768)
    train_cfg = TrainConfig(epochs=1, batch_size=2)  # the papers' optimiser settings
    config = ModelConfig(variant=variant)  # the papers' sizes: 512-d GPS space, GeoCLIP encoder
    shapes = InputShapes(768, 768, 16, 768 if variant == "g3" else 0)
    model = GeoAlignmentModel(config, shapes, seed=0)
    data = AlignmentData(
        full_profile["ids"],
        features,
        TwoLabelMaps(full_profile["ids"]),
        COORDS,
        full_profile["text"],
        np.array([0, 1]),
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = train(
        model,
        data,
        lambda batch: model.loss(batch, train_cfg.same_place_km),
        LoopConfig(
            0, 1, 2, train_cfg.lr_for(variant), train_cfg.weight_decay, train_cfg.lr_step_gamma, 2
        ),
        tmp_path / "checkpoints",
        fingerprint=variant,
        progress=False,
    )
    assert len(history) == 1 and np.isfinite(history[0].train_loss)
    assert history[0].lr == pytest.approx(3e-5 if variant == "g3" else 4e-5)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("gps_encoder") for n in changed)
    heads = ("image_to_gps", "image_to_text") if variant == "g3" else ("fused_to_gps", "seg_to_gps")
    assert all(any(n.startswith(h) for n in changed) for h in heads)
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
