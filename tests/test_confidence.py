"""The confidence radii: their features over a hand-made pool, and their calibration on
synthetic decisions whose error distribution is known, checked on a held-out split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_core.confidence.calibration import calibrate, fold_of, read_calibration
from geoloc_core.confidence.features import ConfidenceFeatures, confidence_features
from geoloc_core.confidence.model import WHOLE_EARTH_KM, CalibrationError, fit_radius_model
from geoloc_core.confidence.settings import ConfidenceSettings
from geoloc_core.inference.decision import Decision
from geoloc_core.inference.pool import CandidatePool
from geoloc_core.params import ParamsError
from geoloc_core.paths import ProjectPaths, radius_column, radius_level
from geoloc_core.report.reliability import reliability
from geoloc_core.steps.evaluate import evaluate_benchmark, flat_metrics

LEVELS = (0.5, 0.9)


def synthetic(n: int, seed: int) -> tuple[ConfidenceFeatures, np.ndarray]:
    """Decisions whose error (km) is exponential with a scale set by the features: wide
    spread and low agreement and margin mean large errors, as on real candidates."""
    rng = np.random.default_rng(seed)
    spread = np.exp(rng.uniform(0, 8, n))  # 1 to 3,000 km
    agreement = rng.uniform(0, 1, n)
    margin = rng.uniform(0, 0.5, n)
    scale = np.exp(1.0 + 0.8 * np.log1p(spread) - 1.5 * agreement - 2.0 * margin)
    return ConfidenceFeatures(spread, agreement, margin), scale * rng.exponential(1.0, n)


def covered(features: ConfidenceFeatures, errors: np.ndarray, radii) -> dict[float, float]:
    return {q: float((errors <= radii[q]).mean()) for q in LEVELS}


def test_radii_hold_their_stated_coverage_on_a_held_out_split():
    features, errors = synthetic(2000, seed=0)
    settings = ConfidenceSettings(levels=LEVELS, groups=4, folds=5)
    calibration = calibrate(settings, [f"q{i}" for i in range(2000)], features, errors)
    held_features, held_errors = synthetic(20000, seed=1)
    radii = calibration.radii(held_features, LEVELS)
    for level, observed in covered(held_features, held_errors, radii).items():
        assert abs(observed - level) < 0.03, (level, observed)
    # the radius follows the difficulty: in the easiest and the hardest half alike, the
    # coverage holds (one radius for every query would over-cover one half, under-cover the
    # other)
    difficulty = calibration.model.difficulty(held_features.matrix())
    easy = difficulty <= np.median(difficulty)
    for half in (easy, ~easy):
        assert abs((held_errors[half] <= radii[0.5][half]).mean() - 0.5) < 0.06
        assert abs((held_errors[half] <= radii[0.9][half]).mean() - 0.9) < 0.05
    assert np.median(radii[0.5][~easy]) > 5 * np.median(radii[0.5][easy])


def test_a_calibration_from_other_errors_misses_its_coverage():
    """The check above can fail: radii fitted on errors ten times smaller cover far less."""
    features, errors = synthetic(2000, seed=0)
    settings = ConfidenceSettings(levels=LEVELS)
    wrong = calibrate(settings, [f"q{i}" for i in range(2000)], features, errors / 10)
    held_features, held_errors = synthetic(20000, seed=1)
    observed = covered(held_features, held_errors, wrong.radii(held_features, LEVELS))
    assert observed[0.5] < 0.3 and observed[0.9] < 0.7


def test_the_calibration_benchmarks_own_radii_never_see_the_query(tmp_path):
    features, errors = synthetic(400, seed=2)
    ids = [f"v{i}" for i in range(400)]
    settings = ConfidenceSettings(levels=LEVELS, folds=4)
    calibration = calibrate(settings, ids, features, errors)
    fold = fold_of(ids, 4)
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3] and fold_of(ids, 4).tolist() == fold.tolist()
    # fold 0's errors changed a thousandfold: its cross-fitted radii do not move, the others' do
    changed = np.where(fold == 0, errors * 1000, errors)
    again = calibrate(settings, ids, features, changed)
    before, after = calibration.radii(features, LEVELS, ids), again.radii(features, LEVELS, ids)
    for q in LEVELS:
        assert np.array_equal(before[q][fold == 0], after[q][fold == 0])
        assert (after[q][fold != 0] > before[q][fold != 0]).any()
    # the file gives back the same radii, the levels ascending and nested
    read = read_calibration(calibration.write(tmp_path / "calibration.json"))
    for q in LEVELS:
        assert np.array_equal(read.radii(features, LEVELS, ids)[q], before[q])
    assert (before[0.9] >= before[0.5]).all()
    assert [radius_column(q) for q in LEVELS] == ["radius_50_km", "radius_90_km"]
    assert radius_level("radius_97.5_km") == 0.975 and radius_level("score") is None


def test_too_few_queries_for_a_level_state_the_whole_earth_and_bad_settings_are_refused():
    features, errors = synthetic(40, seed=3)
    # 10 queries a group: 0.9 is their 10th error, 0.95 needs 19 (unbounded: the whole Earth)
    model = fit_radius_model(features.matrix(), errors, ("a", "b", "c"), 4, levels=(0.9, 0.95))
    assert (model.radius(features.matrix(), 0.95) == WHOLE_EARTH_KM).all()
    assert (model.radius(features.matrix(), 0.9) <= errors.max()).all()
    with pytest.raises(CalibrationError, match=r"lower the groups"):
        fit_radius_model(features.matrix()[:3], errors[:3], ("a", "b", "c"), 4, levels=(0.5,))
    with pytest.raises(ParamsError, match="levels"):
        ConfidenceSettings.from_section(
            {"benchmark": "validation", "levels": [0.9, 0.5], "top_m": 10, "agree_km": 25.0,
             "groups": 4, "folds": 5}
        )


def test_features_of_a_pool_spread_agreement_and_margin():
    # query 0: five candidates at the decision's place and one 1,000 km away that nearly ties;
    # query 1: every candidate at the decision's place
    near, far = (10.0, 20.0), (10.0, 29.13)  # 29.13 - 20 degrees of longitude at 10N: ~1,000 km
    coords = np.array([[near] * 5 + [far], [near] * 6], np.float64)
    valid = np.ones((2, 6), bool)
    sources = np.full((2, 6), "rerank", dtype=object)
    scores = np.full((2, 6), 0.5)
    pool = CandidatePool(coords, sources, valid, scores)
    cosines = np.array([[0.9, 0.5, 0.5, 0.5, 0.5, 0.88], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    decision = Decision(
        np.zeros(2, np.int64), coords[:, 0], cosines[:, 0], np.array(["rerank-top1"] * 2), cosines
    )
    features = confidence_features(pool, decision, top_m=6, agree_km=25.0)
    assert features.spread_km.tolist() == [0.0, 0.0]
    assert features.agreement.tolist() == pytest.approx([5 / 6, 1.0])
    # the runner-up elsewhere (0.88) for query 0; the pool's lowest (0.4) for query 1
    assert features.margin.tolist() == pytest.approx([0.02, 0.5])
    wide = confidence_features(pool, decision, top_m=2, agree_km=25.0)
    assert wide.agreement.tolist() == [1.0, 1.0]


def test_metrics_and_reliability_count_the_truths_within_their_radius(tmp_path):
    """Errors of 0, ~111, ~1,112 and ~5,560 km (latitude offsets on a meridian) against radii
    set around them: the coverage is the share with error <= radius, per level."""
    paths = ProjectPaths(tmp_path)
    offsets = np.array([0.0, 1.0, 10.0, 50.0])
    radius_50 = np.array([1.0, 100.0, 2000.0, 6000.0])  # covers 1st, 3rd, 4th
    radius_90 = np.array([5.0, 200.0, 2000.0, 6000.0])  # covers every one
    table = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(4)],
            "lat": 0.0,
            "lon": 0.0,
            "pred_lat": offsets,
            "pred_lon": 0.0,
            "radius_50_km": radius_50,
            "radius_90_km": radius_90,
        }
    )
    paths.predictions("demo-street").parent.mkdir(parents=True)
    table.to_csv(paths.predictions("demo-street"), index=False)
    curve = table[["id", "radius_50_km", "radius_90_km"]].assign(radius_70_km=radius_50)
    curve.to_csv(paths.radii("demo-street"), index=False)
    evaluation = {"thresholds_km": [1], "distance": "geodesic"}
    metrics = evaluate_benchmark(paths, "demo-street", evaluation)
    assert metrics["confidence"] == {
        "coverage_50": 0.75,
        "coverage_90": 1.0,
        "median_radius_50_km": 1050.0,
        "median_radius_90_km": 1100.0,
    }
    assert flat_metrics(metrics)["confidence.coverage_50"] == 0.75
    found = reliability(paths, "demo-street")
    assert found["stated"].tolist() == [0.5, 0.7, 0.9]
    assert found["observed"].tolist() == [0.75, 0.75, 1.0]


def test_reliability_labels_of_levels_with_nearly_equal_coverage_do_not_overlap():
    """demo-street's 50 % and 90 % radii covered 28.0 % and 31.0 %: their labels once sat on
    top of each other. A label near an earlier one goes above it, or further below near the top."""
    from geoloc_core.report.reliability import _label_drop

    assert _label_drop(28.0, []) == -26
    assert _label_drop(31.0, [28.0]) == 12
    assert _label_drop(94.7, [93.7]) == -56
    assert _label_drop(90.0, [50.0]) == -26
