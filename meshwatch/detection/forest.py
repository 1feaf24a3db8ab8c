"""An isolation forest that follows scikit-learn's estimator contract.

``__init__`` only stores parameters; fitted state ends in ``_``; ``fit`` returns ``self``;
scoring checks the model is fitted. ``score_samples``/``decision_function``/``predict`` keep
scikit-learn's outlier conventions (lower is more abnormal, +1 inlier / -1 outlier), so the
estimator passes ``sklearn.utils.estimator_checks``. meshwatch itself reads
``anomaly_score``: the same score with the sign converted once, higher is worse. The decision
(the threshold) is kept apart from the score, in ``detection.thresholds``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted, validate_data


class EdgeIsolationForest(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Isolation forest over normalised edge-window features."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int | float | str = "auto",
        contamination: float | str = "auto",
        max_features: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: Any = None) -> EdgeIsolationForest:  # noqa: N803 (sklearn's names)
        X = validate_data(self, X, dtype=np.float64)  # noqa: N806
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            contamination=self.contamination,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(X)
        self.offset_ = float(self.forest_.offset_)
        return self

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """scikit-learn convention: the lower, the more abnormal."""
        check_is_fitted(self, "forest_")
        X = validate_data(self, X, dtype=np.float64, reset=False)  # noqa: N806
        scores: NDArray[np.float64] = self.forest_.score_samples(X)
        return scores

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """Negative for outliers (scikit-learn convention)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> NDArray[np.int_]:  # noqa: N803
        """+1 inlier, -1 outlier (scikit-learn convention, at the fitted contamination)."""
        decision = self.decision_function(X)
        out: NDArray[np.int_] = np.where(decision >= 0, 1, -1)
        return out

    def anomaly_score(self, X: ArrayLike) -> NDArray[np.float64]:  # noqa: N803
        """meshwatch's convention, converted once here: the higher, the more anomalous."""
        return -self.score_samples(X)
