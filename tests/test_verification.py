"""G3's geo-verification rule, the pool it chooses from (re-ranked candidates, LMM answers,
gallery points), and its settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_core.inference.pool import CandidatePool, widen_pool
from geoloc_core.steps.verification import extras_by_query
from geoloc_core.verification.gallery import read_gallery
from geoloc_core.verification.geo_verify import closest_gallery_points, verify
from geoloc_core.verification.settings import VerificationSettings


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_verify_takes_the_most_similar_valid_candidate():
    rng = np.random.default_rng(0)
    image = unit(rng.normal(size=(4, 8)))
    candidates = unit(rng.normal(size=(4, 5, 8)))
    candidates[2, 3] = image[2]  # an exact match
    valid = np.ones((4, 5), bool)
    chosen, scores = verify(image, candidates, valid)
    expected = np.einsum("nd,nsd->ns", image, candidates).argmax(axis=1)
    assert chosen.tolist() == expected.tolist() and chosen[2] == 3
    valid[2, 3] = False  # an empty slot is never chosen, even when it would win
    chosen, scores = verify(image, candidates, valid)
    assert chosen[2] != 3 and scores[2, 3] == -np.inf


def test_an_empty_pool_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="1 queries have an empty candidate pool"):
        verify(np.ones((2, 3)), np.ones((2, 2, 3)), np.array([[True, False], [False, False]]))


def test_widened_pool_appends_each_querys_answers_and_marks_the_rest_empty():
    coords = np.zeros((2, 2, 2))
    sources = np.full((2, 2), "rerank", dtype=object)
    valid = np.ones((2, 2), bool)
    answers = pd.DataFrame(
        {
            "query_id": ["b", "b", "b"],
            "source": ["lmm-rag-5"] * 3,
            "lat": [1, 2, 3],
            "lon": [4, 5, 6],
        }
    )
    pool = CandidatePool(coords, sources, valid, np.zeros(valid.shape))
    widened = widen_pool(pool, extras_by_query(["a", "b"], answers))
    wide, wide_sources, wide_valid = widened.coords, widened.sources, widened.valid
    assert wide.shape == (2, 5, 2)
    assert wide_valid.tolist() == [[True, True, False, False, False], [True] * 5]
    assert wide[1, 2:].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert wide_sources[1, 4] == "lmm-rag-5"


def test_closest_gallery_points_are_the_top_by_cosine_in_order():
    rng = np.random.default_rng(1)
    gallery = unit(rng.normal(size=(500, 16)))
    image = unit(rng.normal(size=(37, 16)))
    chosen = closest_gallery_points(image, gallery, 5, chunk=10)
    brute = np.argsort(-(image @ gallery.T), axis=1)[:, :5]
    assert chosen.tolist() == brute.tolist()
    with pytest.raises(ValueError, match="gallery_top=501"):
        closest_gallery_points(image, gallery, 501)


def test_gallery_csv_accepts_geoclip_headers_and_refuses_bad_rows(tmp_path):
    good = tmp_path / "gallery.csv"
    good.write_text("LAT,LON\n48.85,2.35\n-33.9,151.2\n")
    assert read_gallery(good).tolist() == [[48.85, 2.35], [-33.9, 151.2]]
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon\n95,2\n")
    with pytest.raises(ValueError, match="lat"):
        read_gallery(bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "best"}, "verification.method='best': must be one of ['top1', 'verify']"),
        ({"pool_size": 0}, "verification.pool_size=0: must be an int >= 1"),
        ({"gallery": "g.csv"}, "set both"),
        ({"gallery_top": 5}, "set both"),
        ({"gallery_top": -1}, "verification.gallery_top=-1: must be an int >= 0"),
    ],
)
def test_bad_verification_settings_are_one_named_line(changes, message):
    section = {"method": "verify", "pool_size": 20, "gallery": None, "gallery_top": 0, **changes}
    with pytest.raises(ValueError) as caught:
        VerificationSettings.from_section(section)
    assert message in str(caught.value) and "\n" not in str(caught.value)
