"""The index layer on real FAISS at small size: flat, IVF-PQ and HNSW built from shards.

The data is a small synthetic world (regions > cities > places > views, d=64) so that a query's
top-10 has real structure, as with image embeddings; queries are noisy copies of references.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from geoloc_core.retrieval import index as index_module
from geoloc_core.retrieval.index import (
    build_flat_index,
    build_index_from_shards,
    index_device,
    index_for_search,
    index_memory_bytes_per_vector,
    load_index,
    save_index,
    search,
)
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.refine import RefinedIndex

DIM = 64
N = 4000
SPLITS = (1000, 2500)  # three shards: [0, 1000), [1000, 2500), [2500, 4000)
SETTINGS = {
    "flat": IndexSettings(type="flat"),
    "hnsw": IndexSettings(type="hnsw", hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=32),
    "ivfpq": IndexSettings(
        type="ivfpq", ivf_nlist=16, pq_m=16, pq_nbits=6, pq_layout="standard", train_size=3000,
        nprobe=4,
    ),
    "ivfpq-fastscan": IndexSettings(
        type="ivfpq", ivf_nlist=16, pq_m=32, pq_nbits=4, pq_layout="fastscan", train_size=3000,
        nprobe=4,
    ),
}
RECALL_GOAL = {"flat": 1.0, "hnsw": 0.95, "ivfpq": 0.9, "ivfpq-fastscan": 0.9}
pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def noisy(rng: np.random.Generator, vectors: np.ndarray, noise: float) -> np.ndarray:
    """A unit vector near each one given (cosine about 1/sqrt(1 + noise²))."""
    return unit(vectors + noise * rng.standard_normal(vectors.shape) / np.sqrt(DIM))


def jitter(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    """n unit vectors, each near a random one of the centres."""
    return noisy(rng, centres[rng.integers(0, len(centres), n)], noise)


def world(rng: np.random.Generator) -> np.ndarray:
    regions = unit(rng.standard_normal((8, DIM)))
    cities = jitter(rng, regions, 80, 0.9)
    places = jitter(rng, cities, N // 5, 0.8)
    return jitter(rng, places, N, 0.6)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    references = world(rng).astype(np.float16)  # as the embedding shards store them
    sources = rng.choice(N, 200, replace=False)
    queries = noisy(rng, references[sources].astype(np.float64), 0.5).astype(np.float32)
    return {"references": references, "queries": queries}


def loaders(references: np.ndarray, calls: list[int] | None = None):
    parts = np.split(references, SPLITS)

    def loader(number: int):
        def load() -> np.ndarray:
            if calls is not None:
                calls.append(number)
            return parts[number]

        return load

    return [loader(number) for number in range(len(parts))]


def exact(data: dict[str, np.ndarray], queries: np.ndarray) -> np.ndarray:
    scores = queries @ unit(data["references"].astype(np.float32)).T
    return scores


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def built(data) -> dict[str, faiss.Index]:
    refs = data["references"]
    return {name: build_index_from_shards(loaders(refs), s) for name, s in SETTINGS.items()}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_each_type_finds_the_exact_top_10(built, data, name):
    truth = np.argsort(-exact(data, data["queries"]), axis=1)[:, :10]
    scores, positions = search(built[name], data["queries"], 10, SETTINGS[name])
    assert positions.shape == scores.shape == (200, 10)
    assert recall_at_10(positions, truth) >= RECALL_GOAL[name]
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_refine_is_what_lifts_ivfpq_recall(built, data):
    truth = np.argsort(-exact(data, data["queries"]), axis=1)[:, :10]
    plain = IndexSettings(**{**SETTINGS["ivfpq"].__dict__, "refine": False})
    index = build_index_from_shards(loaders(data["references"]), plain)
    without = recall_at_10(search(index, data["queries"], 10, plain)[1], truth)
    with_refine = recall_at_10(search(built["ivfpq"], data["queries"], 10)[1], truth)
    assert without < RECALL_GOAL["ivfpq"] <= with_refine


@pytest.mark.parametrize("name", list(SETTINGS))
def test_positions_follow_shard_order(built, data, name):
    picks = np.array([3, 999, 1000, 1777, 2500, 3999])
    copies = data["references"][picks].astype(np.float32)
    _, positions = search(built[name], copies, 1, SETTINGS[name])
    assert positions[:, 0].tolist() == picks.tolist()
    assert built[name].ntotal == N


@pytest.mark.parametrize("name", list(SETTINGS))
def test_negated_queries_find_the_least_similar(built, data, name):
    similarity = exact(data, data["queries"])
    scores, positions = search(built[name], -data["queries"], 10, SETTINGS[name])
    found = np.take_along_axis(similarity, positions, axis=1)
    np.testing.assert_allclose(scores, -found, atol=2e-2)  # scores are for -q
    if name == "flat":
        least = np.sort(similarity, axis=1)[:, :10]
        np.testing.assert_allclose(found, least, atol=1e-5)
    else:  # approximate: every hit is among the 2 % least similar references
        assert np.all(found <= np.quantile(similarity, 0.02, axis=1, keepdims=True))


def test_shard_loaders_run_once_and_ivfpq_twice(data):
    for name, expected in (("flat", [0, 1, 2]), ("hnsw", [0, 1, 2]), ("ivfpq", [0, 1, 2] * 2)):
        calls: list[int] = []
        build_index_from_shards(loaders(data["references"], calls), SETTINGS[name])
        assert calls == expected


def test_ivfpq_sample_depends_on_the_vectors_not_on_how_they_are_sharded(data):
    refs = data["references"]
    three = build_index_from_shards(loaders(refs), SETTINGS["ivfpq"])
    two = build_index_from_shards([lambda: refs[:1700], lambda: refs[1700:]], SETTINGS["ivfpq"])
    assert np.array_equal(
        faiss.serialize_index(three.base_index), faiss.serialize_index(two.base_index)
    )
    assert np.array_equal(three.vectors.rows, two.vectors.rows)


def test_short_ivf_and_hnsw_results_are_widened_never_minus_one(built, data):
    queries = data["queries"][:50]
    ivf = faiss.extract_index_ivf(built["ivfpq"].base_index)
    raw = built["ivfpq"].search(
        unit(queries).astype(np.float32),
        300,
        params=faiss.IndexRefineSearchParameters(
            k_factor=1, base_index_params=faiss.SearchParametersIVF(nprobe=1)
        ),
    )[1]
    assert (raw < 0).any(), "the test needs cells smaller than k"
    narrow = IndexSettings(**{**SETTINGS["ivfpq"].__dict__, "nprobe": 1, "refine_k_factor": 1})
    _, positions = search(built["ivfpq"], queries, 300, narrow)
    assert (positions >= 0).all() and ivf.nlist == 16
    assert all(len(set(row)) == 300 for row in positions)
    _, positions = search(built["hnsw"], queries, 300, SETTINGS["hnsw"])  # ef 32 < k
    assert (positions >= 0).all() and all(len(set(row)) == 300 for row in positions)


def test_k_is_capped_by_the_index_size(data):
    index = build_flat_index(data["references"][:5].astype(np.float32))
    scores, positions = search(index, data["queries"][:2], 10)
    assert scores.shape == positions.shape == (2, 5)


def test_saved_index_searches_like_the_built_one(built, data, tmp_path):
    for name, index in built.items():
        path = tmp_path / f"{name}.faiss"
        save_index(index, path)
        again = load_index(path)
        expected = search(index, data["queries"], 10, SETTINGS[name])[1]
        assert np.array_equal(search(again, data["queries"], 10)[1], expected)
        assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", list(SETTINGS))
def test_memory_estimate_matches_the_serialized_size(built, name):
    index = built[name]
    measured = len(faiss.serialize_index(index)) / N if name in ("flat", "hnsw") else 0.0
    if isinstance(index, RefinedIndex):  # its copy is on disk; its trained centroids are fixed
        empty = faiss.clone_index(index.base_index)
        empty.reset()
        grown = faiss.serialize_index(index.base_index).size - faiss.serialize_index(empty).size
        measured = grown / N
    estimate = index_memory_bytes_per_vector(SETTINGS[name], DIM)
    assert estimate == pytest.approx(measured, rel=0.1)


def test_build_errors_are_clear(data):
    refs = data["references"]
    with pytest.raises(ValueError, match="shard 1 has vectors of dimension 32 but shard 0 has 64"):
        build_index_from_shards([lambda: refs[:10], lambda: refs[10:20, :32]], SETTINGS["flat"])
    empty = np.zeros((0, DIM), np.float16)
    for settings in SETTINGS.values():
        with pytest.raises(ValueError, match="hold no vectors"):
            build_index_from_shards([lambda: empty, lambda: empty], settings)
    with pytest.raises(ValueError, match=r"index\.pq_m=24 must divide the vector dimension 64"):
        odd = IndexSettings(**{**SETTINGS["ivfpq"].__dict__, "pq_m": 24})
        build_index_from_shards(loaders(refs), odd)
    with pytest.raises(ValueError, match=r"has only 1000: set index\.pq_nbits <= 4, or use"):
        build_index_from_shards([lambda: refs[:1000]], SETTINGS["ivfpq"])
    with pytest.raises(ValueError, match="expected floats"):
        build_index_from_shards([lambda: np.ones((3, DIM), np.int64)], SETTINGS["flat"])


def test_device_resolution_on_cpu(monkeypatch):
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    assert index_device(IndexSettings(device="auto")) == "cpu"
    assert index_device(IndexSettings(device="cpu")) == "cpu"
    with pytest.raises(ValueError, match=r"index\.device='cuda' but this faiss has no GPU"):
        index_device(IndexSettings(device="cuda"))
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)
    with pytest.raises(ValueError, match="faiss-gpu sees no GPU"):
        index_device(IndexSettings(device="cuda"))
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    assert index_device(IndexSettings(device="auto")) == "cuda"
    assert index_device(IndexSettings(device="cpu")) == "cpu"


def test_the_fastscan_layout_builds_faiss_fast_scan_codes_and_stays_on_cpu(built, monkeypatch):
    base = faiss.downcast_index(built["ivfpq-fastscan"].base_index)
    assert isinstance(base, faiss.IndexIVFPQFastScan) and base.pq.nbits == 4
    assert isinstance(faiss.downcast_index(built["ivfpq"].base_index), faiss.IndexIVFPQ)
    # a GPU seen: auto would move flat and standard IVF-PQ, but FAISS has no GPU fast-scan
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    fastscan = built["ivfpq-fastscan"]
    assert index_for_search(fastscan, SETTINGS["ivfpq-fastscan"]) is fastscan


def test_index_for_search_on_cpu_is_the_index_itself(built, monkeypatch):
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    for name, index in built.items():
        assert index_for_search(index, SETTINGS[name]) is index


def test_moving_an_ivfpq_keeps_its_refine_stage_on_the_host(built, data):
    """The GPU path's wrapping, run with a CPU copy standing in for index_cpu_to_gpu."""
    original = built["ivfpq"]
    moved = index_module._moved(original, faiss.clone_index)
    assert isinstance(moved, RefinedIndex) and moved.k_factor == original.k_factor
    assert moved.base_index is not original.base_index and moved.vectors is original.vectors
    expected = search(original, data["queries"], 10, SETTINGS["ivfpq"])
    got = search(moved, data["queries"], 10, SETTINGS["ivfpq"])
    np.testing.assert_array_equal(got[1], expected[1])


# --- settings -------------------------------------------------------------------------------

SECTION = {
    "type": "flat",
    "metric": "inner_product",
    "ivf_nlist": 1024,
    "pq_m": 128,
    "pq_nbits": 4,
    "pq_layout": "fastscan",
    "train_size": 100000,
    "nprobe": 32,
    "refine": True,
    "refine_k_factor": 8,
    "hnsw_m": 32,
    "hnsw_ef_construction": 200,
    "hnsw_ef_search": 128,
    "device": "auto",
    "seed": 0,
}


def test_section_with_every_key_gives_the_defaults():
    assert IndexSettings.from_section(SECTION) == IndexSettings()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nprobe", "32", "index.nprobe='32': must be an int >= 1"),
        ("nprobe", True, "index.nprobe=True: must be an int >= 1"),
        ("ivf_nlist", 2.5, "index.ivf_nlist=2.5: must be an int >= 1"),
        ("refine", 1, "index.refine=1: must be true or false"),
        ("type", 3, "index.type=3: must be one of ['flat', 'ivfpq', 'hnsw']"),
        ("nprobe", 0, "index.nprobe=0: must be an int >= 1"),
        ("train_size", 0, "index.train_size=0: must be an int >= 1"),
        ("hnsw_m", 1, "index.hnsw_m=1: must be an int >= 2"),
        ("seed", -1, "index.seed=-1: must be an int >= 0"),
        ("pq_nbits", 17, "index.pq_nbits=17: must be an int >= 1 and <= 16"),
        ("type", "annoy", "index.type='annoy': must be one of ['flat', 'ivfpq', 'hnsw']"),
        ("metric", "l2", "index.metric='l2': must be one of ['inner_product']"),
        ("device", "tpu", "index.device='tpu': must be one of ['auto', 'cpu', 'cuda']"),
        ("pq_layout", "turbo", "index.pq_layout='turbo': must be one of ['fastscan', 'standard']"),
        (
            "pq_nbits",
            8,
            "index.pq_nbits=8 must be 4 with index.pq_layout=fastscan (FAISS's fast-scan codes "
            "are 4-bit); set index.pq_layout to standard for other code widths",
        ),
    ],
)
def test_bad_values_give_one_line_naming_the_key(key, value, message):
    with pytest.raises(ValueError) as error:
        IndexSettings.from_section({**SECTION, key: value})
    assert str(error.value) == f"params.yaml: {message}"


def test_missing_and_unknown_keys_are_named_on_one_line():
    section = {k: v for k, v in SECTION.items() if k != "nprobe"} | {"n_probe": 32}
    with pytest.raises(ValueError) as error:
        IndexSettings.from_section(section)
    text = str(error.value)
    assert "missing ['nprobe']" in text and "unknown ['n_probe']" in text
    assert "\n" not in text


def test_ivfpq_training_sample_too_small_for_nlist_is_refused():
    with pytest.raises(ValueError) as error:
        IndexSettings.from_section({**SECTION, "type": "ivfpq", "train_size": 20000})
    text = str(error.value)
    assert "index.train_size=20000 is too small" in text and ">= 39936" in text
    assert "raise index.train_size or lower index.ivf_nlist" in text and "\n" not in text


def test_fastscan_on_an_explicit_gpu_is_refused_when_params_load():
    with pytest.raises(ValueError) as error:
        IndexSettings.from_section({**SECTION, "type": "ivfpq", "device": "cuda"})
    assert str(error.value).startswith(
        "params.yaml: index.pq_layout=fastscan has no GPU version in FAISS"
    )
    standard = {**SECTION, "type": "ivfpq", "device": "cuda", "pq_layout": "standard"}
    assert IndexSettings.from_section({**standard, "pq_m": 64, "pq_nbits": 8}).device == "cuda"
