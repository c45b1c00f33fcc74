"""Shards with the demo provider on a tiny demo world: kept when finished, recomputed when
corrupted or when the settings change, bad images reported by id, and the reader API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoloc_core.data.loader import DecodedBatch
from geoloc_core.paths import ProjectPaths
from geoloc_core.segmentation.cache import SegmentationCache
from geoloc_core.segmentation.labelmaps import class_histogram, downsample_mode
from geoloc_core.segmentation.providers.base import Prediction, WorkItem
from geoloc_core.segmentation.providers.demo import DemoProvider
from geoloc_core.segmentation.settings import SegmentationSettings
from geoloc_core.segmentation.shard import compute_shard
from geoloc_core.segmentation.shardfile import read_rows
from geoloc_core.segmentation.step import build_segmentation_shard
from geoloc_core.segmentation.worklist import shard_items
from tests.test_segmentation_units import SECTION

BENCHMARKS = ["demo-street", "demo-unseen"]
REFERENCE_SPLITS = ["reference", "validation"]
DATA_ROOT = "data/raw/demo"


def segmentation_section(**changes) -> dict:
    return {**SECTION, **changes}


def demo_rows(root: Path) -> pd.DataFrame:
    """The tiny demo world in the manifest schema (id, image, lat, lon, split, source, label)."""
    demo = Path(DATA_ROOT)
    raw = pd.read_csv(root / demo / "manifest.csv", dtype=str, keep_default_na=False)
    return pd.DataFrame(
        {
            "id": raw["id"],
            "image": [(demo / image).as_posix() for image in raw["image"]],
            "lat": raw["lat"],
            "lon": raw["lon"],
            "split": raw["split"],
            "source": "demo",
            "label": [(demo / label).as_posix() for label in raw["label"]],
        }
    )


def write_manifest_for(root: Path, name: str) -> None:
    """One manifest as the data step writes it: "reference" (reference + validation splits)
    or a benchmark. Written here, not by the data step, so these tests do not depend on that
    step's own settings (its gate is tested with it)."""
    paths = ProjectPaths(root)
    rows = demo_rows(root)
    if name == "reference":
        target, chosen = paths.reference_manifest, rows[rows["split"].isin(REFERENCE_SPLITS)]
    else:
        target, chosen = paths.benchmark_manifest(name), rows[rows["split"] == name]
    target.parent.mkdir(parents=True, exist_ok=True)
    chosen.to_csv(target, index=False)


def with_manifests(root: Path) -> ProjectPaths:
    for name in ["reference", *BENCHMARKS]:
        write_manifest_for(root, name)
    return ProjectPaths(root)


class CountingProvider(DemoProvider):
    """The demo provider, remembering which ids it was asked for."""

    def __init__(self) -> None:
        super().__init__(condition_errors=False)  # exact ground truth, as SECTION asks
        self.seen: list[str] = []

    def predict(self, items: Sequence[WorkItem], decoded: DecodedBatch | None = None) -> Prediction:
        self.seen += [item.id for item in items]
        return super().predict(items, decoded)


def never() -> DemoProvider:
    raise AssertionError("the provider must not be loaded for a finished shard")


def run_shard(
    paths: ProjectPaths,
    section: dict,
    provider_factory,
    shard: int = 0,
    benchmarks: Sequence[str] = tuple(BENCHMARKS),
):
    settings = SegmentationSettings.from_section(section)
    items = shard_items(paths, benchmarks, settings.n_shards, shard)
    outcome = compute_shard(
        items,
        settings,
        shard,
        paths.segmentation_dir,
        paths.checkpoints("segmentation"),
        provider_factory,
        reason_root=paths.root,
        log=lambda message: None,
    )
    return items, outcome


@pytest.fixture
def paths(tiny_project: Path) -> ProjectPaths:
    return with_manifests(tiny_project)


def test_finished_shard_is_kept_and_corrupted_one_recomputed(paths):
    provider = CountingProvider()
    items, first = run_shard(paths, segmentation_section(), lambda: provider)
    assert not first.kept and first.computed == len(items) == first.images > 0
    assert sorted(provider.seen) == sorted(item.id for item in items)
    original = first.path.read_bytes()

    again = run_shard(paths, segmentation_section(batch_size=3), never)[1]
    assert again.kept and again.computed == 0 and again.digest == first.digest

    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0x01
    first.path.write_bytes(bytes(corrupted))
    redone = run_shard(paths, segmentation_section(), CountingProvider)[1]
    assert not redone.kept and "corrupt" in redone.reason
    assert redone.computed == len(items)
    assert first.path.read_bytes() == original


def test_changed_settings_recompute_with_new_fingerprint(paths):
    _, clean = run_shard(paths, segmentation_section(), CountingProvider)
    noisy_section = segmentation_section(label_noise=0.2)
    _, noisy = run_shard(paths, noisy_section, CountingProvider)
    assert not noisy.kept and "settings changed" in noisy.reason
    assert noisy.digest != clean.digest
    _, meta = read_rows(noisy.path)
    assert meta["fingerprint"] == SegmentationSettings.from_section(noisy_section).fingerprint()
    assert meta["settings"]["label_noise"] == 0.2
    assert run_shard(paths, noisy_section, never)[1].kept


def test_changed_ids_reuse_the_rows_still_wanted(paths):
    items, _ = run_shard(paths, segmentation_section(), CountingProvider)
    street_only = ["demo-street"]
    fewer = shard_items(paths, street_only, 2, 0)
    assert 0 < len(fewer) < len(items)
    _, shrunk = run_shard(paths, segmentation_section(), never, benchmarks=street_only)
    assert not shrunk.kept and shrunk.reused == len(fewer) == shrunk.images
    provider = CountingProvider()
    _, grown = run_shard(paths, segmentation_section(), lambda: provider)
    added = sorted({i.id for i in items} - {i.id for i in fewer})
    assert sorted(provider.seen) == added and grown.reused == len(fewer)
    assert grown.images == len(items)


def test_bad_image_is_reported_by_id_and_the_rest_cached(paths):
    section = segmentation_section()
    items = shard_items(paths, BENCHMARKS, 2, 0)
    bad = items[1]
    bad.image.write_bytes(b"")
    report = build_segmentation_shard(paths, section, BENCHMARKS, "000", log=lambda m: None)
    failures = report.outcome.failures
    assert [f.id for f in failures] == [bad.id]
    assert failures[0].reason  # the decoder's own words (e.g. an empty or unidentified file)
    assert str(paths.root) not in failures[0].reason  # portable: shard bytes do not name root
    assert report.outcome.images == len(items) - 1 and report.problems == []
    assert report.failures_csv.read_text().splitlines()[1].startswith(f"{bad.id},")
    cache = SegmentationCache(paths.segmentation_dir)
    assert bad.id not in cache.ids() and cache.failures()[bad.id] == failures[0].reason
    with pytest.raises(KeyError, match=f"{bad.id}.*failed"):
        cache.load([items[0].id, bad.id])
    maps, histograms = cache.load([items[2].id, items[0].id])  # the rest is cached, in order
    for item, label_map, histogram in zip([items[2], items[0]], maps, histograms, strict=True):
        truth = np.asarray(Image.open(item.label))
        assert np.array_equal(label_map, downsample_mode(truth, 32))
        np.testing.assert_allclose(histogram, class_histogram(truth))


def test_reader_returns_rows_in_order_with_histograms(paths):
    section = segmentation_section()
    all_items = shard_items(paths, BENCHMARKS, 1, 0)
    for shard in ("000", "001"):
        report = build_segmentation_shard(paths, section, BENCHMARKS, shard, log=lambda m: None)
        wanted = shard_items(paths, BENCHMARKS, 2, int(shard))
        assert report.problems == [] and report.outcome.failures == []
        assert not report.outcome.kept and report.outcome.computed == len(wanted)
        assert report.wanted == report.outcome.images == len(wanted) > 0
        assert report.summary()["images"] == len(wanted)
    cache = SegmentationCache(paths.segmentation_dir)
    ids = cache.ids()
    assert ids == sorted(item.id for item in all_items)  # reference and benchmark images
    order = [*ids[::-1][:9], ids[0]]  # across shards, reversed, with a repeat
    maps, histograms = cache.load(order)
    assert maps.shape == (10, 32, 32) and maps.dtype == np.uint8 and maps.max() < 150
    assert histograms.shape == (10, 150) and histograms.dtype == np.float32
    np.testing.assert_allclose(histograms.sum(axis=1), 1.0, atol=1e-5)
    labels = {item.id: item.label for item in all_items}
    for image_id, label_map, histogram in zip(order, maps, histograms, strict=True):
        truth = np.asarray(Image.open(labels[image_id]))
        assert np.array_equal(label_map, downsample_mode(truth, 32))
        np.testing.assert_allclose(histogram, class_histogram(truth))  # full resolution
    with pytest.raises(KeyError, match="no-such-image"):
        cache.load([ids[0], "no-such-image"])
    empty_maps, empty_histograms = cache.load([])
    assert empty_maps.shape == (0, 32, 32) and empty_histograms.shape == (0, 150)


def test_empty_shards_and_a_new_layout(paths):
    section = segmentation_section(n_shards=3)
    for shard in ("000", "001", "002"):
        build_segmentation_shard(paths, section, BENCHMARKS, shard, log=lambda m: None)
    many = segmentation_section(n_shards=300)  # 84 images: most shards are empty
    empty = next(k for k in range(300) if not shard_items(paths, BENCHMARKS, 300, k))
    removed: list[str] = []
    report = build_segmentation_shard(paths, many, BENCHMARKS, f"{empty:03d}", log=removed.append)
    assert report.outcome.images == 0 and report.problems == []
    cache_dir = paths.segmentation_dir
    assert sorted(p.name for p in cache_dir.glob("shard-*.npz")) == [report.outcome.path.name]
    assert sum("layout of 3 shards" in line for line in removed) == 6  # 3 shards + 3 CSVs
    cache = SegmentationCache(cache_dir)
    assert cache.ids() == [] and cache.resolution() == 32
    with pytest.raises(KeyError, match="not in"):
        cache.load(["ref-00000-00"])
