"""train.order: shards: the plan, the stream's order and batches, streamed validation, and a
training run through the real step on a small synthetic project; train.amp's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geoloc_core.data.manifest import write_manifest
from geoloc_core.geo.metrics import DEFAULT_THRESHOLDS_KM
from geoloc_core.models.alignment import GeoAlignmentModel, InputShapes
from geoloc_core.models.config import ModelConfig, TrainConfig
from geoloc_core.params import ParamsError
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.sharding import shard_of
from geoloc_core.steps.training import train_model
from geoloc_core.training.dataset import AlignmentData
from geoloc_core.training.feature_cache import FeatureCache, ShardContent, write_shard
from geoloc_core.training.precision import Precision
from geoloc_core.training.shard_plan import plan_shards
from geoloc_core.training.shard_stream import ShardStream
from geoloc_core.training.validation import retrieval_accuracy, streamed_retrieval_accuracy
from tests.test_training_helpers import TINY_MODEL, TINY_TRAIN

N, SHARDS, DIM, TOKENS = 60, 3, 16, 4
SPEC = {"architecture": "x", "pretrained": None, "token_grid": 2, "weights_sha256": None}


@pytest.fixture
def project(tmp_path) -> Path:
    """N reference and 6 validation rows; features for all but r-59; captions for all."""
    rng = np.random.default_rng(0)
    ids = [f"r-{k:02d}" for k in range(N)] + [f"v-{k}" for k in range(6)]
    paths = ProjectPaths(tmp_path)
    manifest = pd.DataFrame(
        {
            "id": ids,
            "image": [f"data/{i}.png" for i in ids],
            "lat": rng.uniform(-60, 60, len(ids)),
            "lon": rng.uniform(-180, 180, len(ids)),
            "split": ["reference"] * N + ["validation"] * 6,
            "source": "demo",
        }
    )
    write_manifest(manifest, paths.reference_manifest)
    paths.place_texts.parent.mkdir(parents=True, exist_ok=True)
    captions = [f"City {k % 7}" for k in range(len(ids))]
    pd.DataFrame({"id": ids, "caption": captions}).to_csv(paths.place_texts, index=False)
    with_features = [i for i in ids if i != "r-59"]
    for index in range(SHARDS):
        mine = sorted(i for i in with_features if shard_of(i, SHARDS) == index)
        content = ShardContent(
            mine,
            rng.standard_normal((len(mine), DIM)).astype(np.float16),
            rng.standard_normal((len(mine), TOKENS, DIM)).astype(np.float16),
            {},
        )
        meta = {"spec": SPEC, "fingerprint": "t", "image_size": 8, "pooled_dim": DIM}
        meta.update(token_dim=DIM, tokens=TOKENS)
        write_shard(paths.features_dir, index, SHARDS, content, meta)
    return tmp_path


def plan_of(root: Path, texts: bool = False):
    paths = ProjectPaths(root)
    features = FeatureCache(paths.features_dir)
    place_texts = paths.place_texts if texts else None
    return features, plan_shards(
        features, paths.reference_manifest, "reference", "validation", set(), place_texts, root
    )


def test_read_rows_equal_the_arrays_in_any_order(project) -> None:
    features = FeatureCache(ProjectPaths(project).features_dir)
    shard = ProjectPaths(project).features_dir / "shard-00001-of-00003"
    pooled, tokens = np.load(shard / "pooled.npy"), np.load(shard / "tokens.npy")
    rows = np.array([5, 0, 1, 2, 7, 6])
    got_pooled, got_tokens = features.read_rows(1, rows)
    np.testing.assert_array_equal(got_pooled, pooled[rows])
    np.testing.assert_array_equal(got_tokens, tokens[rows])


def test_the_plan_holds_every_sample_with_features_once(project) -> None:
    features, plan = plan_of(project, texts=True)
    assert plan.dropped == 1  # r-59 has no features
    held = [i for p in plan.validation for i in features.shard_ids(p.shard)[p.rows].tolist()]
    assert sorted(held) == [f"v-{k}" for k in range(6)]
    manifest = pd.read_csv(ProjectPaths(project).reference_manifest).set_index("id")
    seen = []
    for part in plan.parts:
        ids = features.shard_ids(part.shard)[part.rows]
        seen += ids.tolist()
        np.testing.assert_array_equal(part.latlon, manifest.loc[ids, ["lat", "lon"]].to_numpy())
        # caption rows number the distinct captions in sorted order, as captions.py does
        assert [plan.captions[c] for c in part.caption] == [f"City {int(i[2:]) % 7}" for i in ids]
    assert sorted(seen) == [f"r-{k:02d}" for k in range(N - 1)]
    assert plan.captions == sorted({f"City {k}" for k in range(7)})


def test_the_order_is_by_shard_then_within_shard_from_the_seed(project) -> None:
    features, plan = plan_of(project)
    stream = ShardStream(features, plan.parts)
    first = stream.epoch_order(torch.Generator().manual_seed(4))
    again = stream.epoch_order(torch.Generator().manual_seed(4))
    other = stream.epoch_order(torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sorted(first.tolist()) == list(range(len(stream)))
    part_of = np.searchsorted(stream.offsets, first, side="right") - 1
    runs = part_of[np.r_[True, np.diff(part_of) != 0]]
    assert sorted(runs.tolist()) == list(range(len(plan.parts)))  # each shard read in one go
    assert not all(np.all(np.diff(first[part_of == k]) > 0) for k in range(len(plan.parts)))


def test_stream_batches_equal_the_in_memory_batches(project) -> None:
    features, plan = plan_of(project, texts=True)
    text = np.random.default_rng(1).standard_normal((len(plan.captions), 8)).astype(np.float32)
    stream = ShardStream(features, plan.parts, text)
    positions = np.array([3, len(stream) - 1, 0, 20, 21])  # straddles shards
    ids = np.concatenate([features.shard_ids(p.shard)[p.rows] for p in plan.parts])[positions]
    captions = np.concatenate([p.caption for p in plan.parts])[positions]
    latlon = np.concatenate([p.latlon for p in plan.parts])[positions]
    expected = AlignmentData(ids.tolist(), features, None, latlon, text, captions).batch(
        np.arange(len(ids))
    )
    got = stream.batch(positions)
    for name in ("pooled", "tokens", "latlon", "text", "caption_ids"):
        assert torch.equal(getattr(got, name), getattr(expected, name)), name


def test_streamed_validation_equals_the_flat_index(project) -> None:
    features, plan = plan_of(project)
    stream = ShardStream(features, plan.parts)
    held = ShardStream(features, plan.validation)

    def in_memory(source: ShardStream, parts) -> AlignmentData:
        ids = np.concatenate([features.shard_ids(p.shard)[p.rows] for p in parts])
        return AlignmentData(ids.tolist(), features, None, source.latlon(np.arange(len(source))))

    reference, queries = in_memory(stream, plan.parts), in_memory(held, plan.validation)
    config = ModelConfig.from_section({**TINY_MODEL, "variant": "image-only"})
    model = GeoAlignmentModel(config, InputShapes(DIM, DIM, TOKENS, 0), seed=0)
    flat = retrieval_accuracy(model, reference, queries, DEFAULT_THRESHOLDS_KM)
    streamed = streamed_retrieval_accuracy(model, stream, held, DEFAULT_THRESHOLDS_KM, 7)
    assert streamed == pytest.approx(flat, rel=1e-9)


def test_the_step_trains_on_the_stream(project) -> None:
    result = train_model(
        ProjectPaths(project),
        {**TINY_MODEL, "variant": "image-only"},
        {**TINY_TRAIN, "order": "shards", "epochs": 1},
        DEFAULT_THRESHOLDS_KM,
        fingerprint="test",
        progress=False,
    )
    assert (result["reference_images"], result["validation_images"]) == (N - 1, 6)
    assert result["images_without_inputs"] == 1 and np.isfinite(result["train_loss"])
    assert ProjectPaths(project).model_weights.is_file()
    assert not list(ProjectPaths(project).checkpoints("alignment").glob("shard-plan-*"))


def test_fp16_on_cpu_is_refused_at_load_and_bf16_runs_on_cpu() -> None:
    with pytest.raises(ParamsError, match=r"train\.amp=fp16 needs a CUDA device"):
        TrainConfig.from_section({**TINY_TRAIN, "amp": "fp16"})
    with pytest.raises(ParamsError, match="amp"):
        TrainConfig.from_section({**TINY_TRAIN, "amp": "fp8"})
    with pytest.raises(ValueError, match=r"train\.amp=fp16 needs a CUDA device"):
        Precision("fp16", "cpu")  # device: auto that found no GPU
    precision, layer = Precision("bf16", "cpu"), torch.nn.Linear(4, 4)
    with precision.autocast():
        out = layer(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16
    with Precision("off", "cpu").autocast():
        assert layer(torch.ones(2, 4)).dtype == torch.float32


def test_two_devices_train_under_torchrun_as_one_process_does(project, tmp_path) -> None:
    """train.devices: 2 launches torchrun (2 gloo processes) from the step; process 0 writes the
    model and the checkpoint, and the step's callbacks get what it recorded."""
    import shutil

    two = tmp_path / "two"
    shutil.copytree(project, two)
    settings = {**TINY_TRAIN, "order": "shards", "epochs": 1, "num_threads": 1}
    steps, epochs = [], []

    def run(root: Path, devices: int, **callbacks) -> dict:
        return train_model(
            ProjectPaths(root),
            {**TINY_MODEL, "variant": "image-only"},
            {**settings, "devices": devices},
            DEFAULT_THRESHOLDS_KM,
            fingerprint="test",
            progress=False,
            **callbacks,
        )

    alone = run(project, 1)
    together = run(two, 2, on_step=lambda *a: steps.append(a), on_epoch=epochs.append)
    assert together["reference_images"] == alone["reference_images"] == N - 1
    assert together["train_loss"] == pytest.approx(alone["train_loss"], abs=1e-5)
    assert [s[0] for s in steps] == [1, 2, 3, 4] and [e.epoch for e in epochs] == [1]
    expected = torch.load(ProjectPaths(project).model_weights, weights_only=True)
    got = torch.load(ProjectPaths(two).model_weights, weights_only=True)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-4, msg=name)
    assert (ProjectPaths(two).checkpoints("alignment") / "last.pt").is_file()
