from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

from meshwatch.detection.forest import EdgeIsolationForest
from meshwatch.detection.thresholds import calibrate, per_window_rate


@parametrize_with_checks([EdgeIsolationForest(n_estimators=10, random_state=0)])
def test_sklearn_estimator_contract(estimator: EdgeIsolationForest, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


@pytest.mark.parametrize("rows", [3, 50, 2000])  # both scoring paths (level walk and per tree)
def test_forest_scores_equal_scikit_learns_isolation_forest(rows: int) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 12))
    ours = EdgeIsolationForest(n_estimators=60, random_state=4, deviation_weight=0.0).fit(X)
    reference = IsolationForest(n_estimators=60, random_state=4).fit(X)
    Y = rng.normal(size=(rows, 12)) * 3
    np.testing.assert_allclose(
        ours.score_samples(Y), reference.score_samples(Y), rtol=0, atol=1e-12
    )


def test_anomaly_score_is_higher_for_worse_and_single_feature_extremes_stand_out() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(scale=0.4, size=(5000, 12))
    model = EdgeIsolationForest(n_estimators=100, random_state=0).fit(X)
    normal = rng.normal(scale=0.4, size=(200, 12))
    spike = normal.copy()
    spike[:, 3] = 12.0  # bytes per request x100 on one edge, nothing else changed
    assert model.anomaly_score(spike).min() > model.anomaly_score(normal).max()
    np.testing.assert_allclose(model.anomaly_score(normal), -model.score_samples(normal))


def test_threshold_calibration_meets_the_budget_or_extrapolates() -> None:
    scores = np.linspace(0.0, 1.0, 1001)
    assert calibrate(scores, 0.01).value == pytest.approx(0.99, abs=1e-3)
    tight = calibrate(scores, 1e-6, margin=0.5)
    assert tight.value == pytest.approx(1.0 + 0.5 * 0.5)
    assert per_window_rate(1.0, 10, 60) == pytest.approx(1 / (10 * 1440))
