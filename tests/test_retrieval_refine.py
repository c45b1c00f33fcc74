"""IVF-PQ's refine copy on disk: filled shard by shard, memory-mapped, read by the shortlist's
rows only, checksummed, or off. Real FAISS at tiny size (3,000 x 32)."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from geoloc_core.file_hash import CorruptFileError
from geoloc_core.retrieval.index import (
    build_index_from_shards,
    checksum_file,
    load_index,
    refine_building_file,
    refine_file_of,
    save_index,
    search,
)
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.refine import RefinedIndex, RefineVectors

DIM, N = 32, 3000
SETTINGS = IndexSettings(
    type="ivfpq",
    ivf_nlist=16,
    pq_m=8,
    pq_nbits=6,
    pq_layout="standard",
    train_size=3000,
    nprobe=4,
    refine_k_factor=4,
)
pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    """Clustered references (as fp16 shards store them) and queries near some of them."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((60, DIM))
    refs = unit(centres[rng.integers(0, 60, N)] + 0.6 * rng.standard_normal((N, DIM)))
    queries = unit(refs[rng.choice(N, 100, replace=False)] + 0.1 * rng.standard_normal((100, DIM)))
    return {"references": refs.astype(np.float16), "queries": queries}


def shards(refs: np.ndarray, cuts: tuple[int, ...]) -> list:
    return [lambda part=part: part for part in np.split(refs, cuts)]


def built_to_file(refs, tmp_path, cuts=(700, 1500, 2900), settings=SETTINGS) -> RefinedIndex:
    path = tmp_path / "reference.faiss"
    index = build_index_from_shards(shards(refs, cuts), settings, None, refine_building_file(path))
    save_index(index, path)
    return load_index(path)


def test_shard_by_shard_fill_gives_the_index_built_all_at_once(data, tmp_path):
    refs = data["references"]
    whole = built_to_file(refs, tmp_path / "whole", cuts=())
    sharded = built_to_file(refs, tmp_path / "sharded")
    assert isinstance(sharded, RefinedIndex) and sharded.vectors.mapped
    assert np.array_equal(
        faiss.serialize_index(whole.base_index), faiss.serialize_index(sharded.base_index)
    )
    copies = [refine_file_of(tmp_path / part / "reference.faiss") for part in ("whole", "sharded")]
    assert copies[0].read_bytes() == copies[1].read_bytes()
    assert np.array_equal(
        np.load(copies[1]),
        refs.astype(np.float32)
        / np.linalg.norm(refs.astype(np.float32), axis=1, keepdims=True).astype(np.float16),
    )


def test_refine_from_the_mapped_copy_equals_refine_in_ram_and_faiss_own(data, tmp_path):
    refs, queries = data["references"], data["queries"]
    in_ram = build_index_from_shards(shards(refs, (1000,)), SETTINGS)
    mapped = built_to_file(refs, tmp_path)
    assert not in_ram.vectors.mapped and mapped.vectors.mapped
    ram_scores, ram_positions = search(in_ram, queries, 10, SETTINGS)
    map_scores, map_positions = search(mapped, queries, 10, SETTINGS)
    assert np.array_equal(ram_positions, map_positions)
    assert np.array_equal(ram_scores, map_scores)
    # FAISS's in-RAM IndexRefine over the same PQ codes and an fp16 scalar quantizer
    refine = faiss.IndexScalarQuantizer(
        DIM, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    refine.add(unit(refs.astype(np.float32)))
    theirs = faiss.IndexRefine(faiss.clone_index(in_ram.base_index), refine)
    theirs.k_factor = SETTINGS.refine_k_factor
    faiss_scores, faiss_positions = search(theirs, queries, 10, SETTINGS)
    assert np.array_equal(faiss_positions, map_positions)
    np.testing.assert_allclose(faiss_scores, map_scores, atol=1e-6)


def test_a_search_reads_only_its_shortlist_rows(data, tmp_path):
    """Every row outside the queries' shortlists is overwritten with NaN: results unchanged."""
    refs, queries = data["references"], data["queries"][:10]
    index = built_to_file(refs, tmp_path)
    expected = search(index, queries, 10, SETTINGS)
    _, shortlist = index.base_index.search(
        queries, 10 * SETTINGS.refine_k_factor, params=faiss.SearchParametersIVF(nprobe=4)
    )
    poisoned = np.lib.format.open_memmap(tmp_path / "poisoned.npy", "w+", np.float16, refs.shape)
    poisoned[:] = np.nan
    read = np.unique(shortlist[shortlist >= 0])
    poisoned[read] = index.vectors.rows[read]
    poisoned.flush()
    del poisoned
    vectors = RefineVectors.open(tmp_path / "poisoned.npy")
    again = RefinedIndex(index.base_index, vectors, SETTINGS.refine_k_factor, None)
    got = search(again, queries, 10, SETTINGS)
    assert len(read) < N // 2  # the shortlists leave most rows unread
    assert np.array_equal(got[1], expected[1]) and np.array_equal(got[0], expected[0])


def test_refine_off_keeps_no_copy(data, tmp_path):
    refs, queries = data["references"], data["queries"]
    plain = IndexSettings(**{**SETTINGS.__dict__, "refine": False})
    path = tmp_path / "reference.faiss"
    built_to_file(refs, tmp_path)  # an earlier build with refine on left its copy here
    index = build_index_from_shards(shards(refs, (1000,)), plain, None, refine_building_file(path))
    assert isinstance(index, faiss.IndexIVFPQ)
    save_index(index, path)
    assert not refine_file_of(path).exists() and not refine_building_file(path).exists()
    assert len(checksum_file(path).read_text().split()) == 1
    again = load_index(path)
    _, positions = search(again, queries, 10, plain)
    assert positions.shape == (100, 10) and (positions >= 0).all()
    assert np.array_equal(positions, search(index, queries, 10, plain)[1])


def flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_damaged_or_missing_refine_copy_is_refused(data, tmp_path):
    path = tmp_path / "reference.faiss"
    built_to_file(data["references"], tmp_path)
    copy = refine_file_of(path)
    flip_byte(copy)
    with pytest.raises(
        CorruptFileError, match=r"reference\.refine\.npy is damaged.*retrieval_index"
    ):
        load_index(path)
    copy.unlink()
    with pytest.raises(FileNotFoundError, match=r"refine copy, is missing: re-materialize"):
        load_index(path)


def test_a_shard_that_changes_between_the_two_passes_is_refused(data):
    refs = data["references"]
    calls = []

    def growing() -> np.ndarray:
        calls.append(1)
        return refs if len(calls) == 1 else np.concatenate([refs, refs[:5]])

    with pytest.raises(ValueError, match="gave 3000 vectors while IVF-PQ sampled them and 3005"):
        build_index_from_shards([growing], SETTINGS)
