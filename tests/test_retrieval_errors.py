"""The retrieval layer's edges on real FAISS: an empty index or reference set, vectors that cannot
be normalised, shards that do not fit together, and k larger than the index."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from geoloc_core.retrieval.index import build_flat_index, build_index_from_shards, search
from geoloc_core.retrieval.index_settings import IndexSettings
from geoloc_core.retrieval.predict import predict_nearest

FLAT = IndexSettings(type="flat")
HNSW = IndexSettings(type="hnsw", hnsw_m=8, hnsw_ef_construction=16, hnsw_ef_search=4)
# three unit vectors at known angles in the plane: cosines with (1, 0) are 1, 0.6 and -0.8
REFERENCES = np.array([[1.0, 0.0], [0.6, 0.8], [-0.8, 0.6]], dtype=np.float32)
LATLON = np.array([[10.0, 20.0], [-30.0, 40.0], [50.0, -60.0]])
pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def test_searching_an_empty_index_raises() -> None:
    with pytest.raises(ValueError, match="the retrieval index is empty"):
        search(faiss.IndexFlatIP(2), REFERENCES, 1)


@pytest.mark.parametrize(
    "settings", [FLAT, HNSW, IndexSettings(type="ivfpq")], ids=["flat", "hnsw", "ivfpq"]
)
def test_a_reference_set_without_vectors_is_refused(settings: IndexSettings) -> None:
    empty = [lambda: np.zeros((0, 8), np.float32), lambda: np.zeros((0, 8), np.float32)]
    with pytest.raises(ValueError, match="the 2 reference shards hold no vectors"):
        build_index_from_shards(empty, settings)
    with pytest.raises(ValueError, match="the 0 reference shards hold no vectors"):
        build_index_from_shards([], settings)


def test_zero_vectors_are_refused_as_references_and_as_queries() -> None:
    with_zero = np.vstack([REFERENCES, np.zeros((2, 2), np.float32)])
    with pytest.raises(ValueError, match="2 embeddings are all zeros; cannot normalise"):
        build_flat_index(with_zero)
    with pytest.raises(ValueError, match="2 embeddings are all zeros"):
        build_index_from_shards([lambda: REFERENCES, lambda: with_zero], FLAT)
    index = build_flat_index(REFERENCES)
    with pytest.raises(ValueError, match="1 embeddings are all zeros"):
        search(index, np.array([[1.0, 0.0], [0.0, 0.0]]), 1)


def test_nan_and_inf_vectors_are_refused() -> None:
    index = build_flat_index(REFERENCES)
    with pytest.raises(ValueError, match="2 embeddings hold NaN or inf values"):
        search(index, np.array([[np.nan, 1.0], [1.0, 0.0], [np.inf, 0.0]]), 1)


def test_shards_must_agree_on_shape_and_type() -> None:
    with pytest.raises(ValueError, match="shard 1 has vectors of dimension 3 but shard 0 has 2"):
        build_index_from_shards([lambda: REFERENCES, lambda: np.ones((2, 3))], FLAT)
    with pytest.raises(ValueError, match=r"shard 0: vectors must be 2-D \(n, d\), got \(4,\)"):
        build_index_from_shards([lambda: np.ones(4)], FLAT)
    with pytest.raises(ValueError, match="shard 0: vectors are int64, expected floats"):
        build_index_from_shards([lambda: np.ones((2, 2), np.int64)], FLAT)
    with pytest.raises(ValueError, match=r"embeddings must be 2-D \(n, d\), got shape \(2,\)"):
        search(build_flat_index(REFERENCES), np.array([1.0, 0.0]), 1)


@pytest.mark.parametrize("settings", [FLAT, HNSW], ids=["flat", "hnsw"])
def test_k_beyond_the_index_gives_every_vector_once_best_first(settings: IndexSettings) -> None:
    index = build_index_from_shards([lambda: REFERENCES[:1], lambda: REFERENCES[1:]], settings)
    scores, positions = search(index, np.array([[2.0, 0.0], [0.0, -3.0]]), 10, settings)
    assert positions.tolist() == [[0, 1, 2], [0, 2, 1]]  # never a -1, never a repeat
    np.testing.assert_allclose(scores, [[1.0, 0.6, -0.8], [0.0, -0.6, -0.8]], atol=1e-6)


def test_predict_nearest_caps_k_and_takes_the_best_neighbours_coordinates() -> None:
    index = build_flat_index(REFERENCES)
    found = predict_nearest(index, LATLON, np.array([[0.5, 0.7], [-1.0, 1.0]]), top_k=5)
    assert found.neighbour_positions.tolist() == [[1, 0, 2], [2, 1, 0]]
    assert found.lat.tolist() == [-30.0, 50.0] and found.lon.tolist() == [40.0, -60.0]
    assert found.scores.shape == (2, 3)
    with pytest.raises(ValueError, match=r"retrieval\.top_k must be >= 1, got 0"):
        predict_nearest(index, LATLON, REFERENCES, top_k=0)
