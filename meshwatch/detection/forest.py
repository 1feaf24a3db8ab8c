"""An isolation forest, plus a robust single-feature term, that follows scikit-learn's
estimator contract.

Why the extra term: inputs are per-edge normalised deviations (about 1 at the edge's own
p99). An isolation forest isolates points that are unusual in *combination* well, but a
window that is extreme in one feature only (error ratio x12, bytes per request x100) is
isolated only when a tree happens to split on that feature before reaching its height limit,
so with a dozen features it can score like a normal point. ``deviation_weight`` adds
``log1p(max(0, max|x| - deviation_onset))`` to the anomaly score: zero for ordinary windows,
large for any single feature far past the edge's own p99. Set it to 0 for a pure forest.

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

LEVEL_WALK_MAX_ROWS = 256


class EdgeIsolationForest(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Isolation forest over normalised edge-window features."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int | float | str = "auto",
        contamination: float | str = "auto",
        max_features: float = 1.0,
        random_state: int | None = None,
        deviation_weight: float = 0.5,
        deviation_onset: float = 2.0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.random_state = random_state
        self.deviation_weight = deviation_weight
        self.deviation_onset = deviation_onset

    def fit(self, X: ArrayLike, y: Any = None) -> EdgeIsolationForest:
        X = validate_data(self, X, dtype=np.float64)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            contamination=self.contamination,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(X)
        self._nodes: tuple[Any, ...] = _compile(self.forest_)
        self.normaliser_ = float(
            len(self.forest_.estimators_) * _average_path_length(self.forest_.max_samples_)
        )
        self.offset_ = float(self.forest_.offset_)
        if self.contamination != "auto":  # keep predict() at the requested contamination
            self.offset_ = float(
                np.percentile(self.score_samples(X), 100.0 * float(self.contamination))
            )
        return self

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """scikit-learn convention: the lower, the more abnormal."""
        check_is_fitted(self, "forest_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = self._forest_scores(np.asarray(X, dtype=np.float64))
        if self.deviation_weight:
            excess = np.maximum(0.0, np.abs(X).max(axis=1) - self.deviation_onset)
            scores = scores - self.deviation_weight * np.log1p(excess)
        return scores

    def _forest_scores(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """``IsolationForest.score_samples``, computed by walking all trees at once, level by
        level, over one flattened node table: the same numbers (a test pins them) without the
        per-tree dispatch that dominates when a window has only a few edges to score."""
        nodes_table: tuple[Any, ...] | None = getattr(self, "_nodes", None)
        if nodes_table is None:
            nodes_table = self._nodes = _compile(
                self.forest_
            )  # derived from forest_; rebuilt after loading
        feature, threshold, left, right, lengths, roots, depth = nodes_table
        x32 = np.ascontiguousarray(X, dtype=np.float32)
        if x32.shape[0] > LEVEL_WALK_MAX_ROWS:  # big batches: one C call per tree is cheaper
            total = np.zeros(x32.shape[0], dtype=np.float64)
            for root, tree, used in zip(
                roots, self.forest_.estimators_, self.forest_.estimators_features_, strict=True
            ):
                total += lengths[root + tree.tree_.apply(np.ascontiguousarray(x32[:, used]))]
            big: NDArray[np.float64] = -np.power(2.0, -total / self.normaliser_)
            return big
        rows = np.arange(x32.shape[0])[None, :]
        nodes = np.repeat(roots[:, None], x32.shape[0], axis=1)
        for _ in range(depth):
            f = feature[nodes]
            inner = f >= 0
            if not inner.any():
                break
            goes_left = x32[rows, np.where(inner, f, 0)] <= threshold[nodes]
            nodes = np.where(inner, np.where(goes_left, left[nodes], right[nodes]), nodes)
        depths = lengths[nodes].sum(axis=0)
        result: NDArray[np.float64] = -np.power(2.0, -depths / self.normaliser_)
        return result

    def __getstate__(self) -> dict[str, Any]:
        """Saved state leaves out the compiled node table: it is derived from ``forest_``."""
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("_nodes", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "forest_" in state:
            self._nodes = _compile(self.forest_)

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Negative for outliers (scikit-learn convention)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> NDArray[np.int_]:
        """+1 inlier, -1 outlier (scikit-learn convention, at the fitted contamination)."""
        decision = self.decision_function(X)
        out: NDArray[np.int_] = np.where(decision >= 0, 1, -1)
        return out

    def anomaly_score(self, X: ArrayLike) -> NDArray[np.float64]:
        """meshwatch's convention, converted once here: the higher, the more anomalous."""
        return -self.score_samples(X)


def _compile(forest: IsolationForest) -> tuple[Any, ...]:
    """All trees as one node table: global feature index, float32 threshold, children (as
    global node ids), leaf path lengths, root ids and the deepest depth."""
    features, thresholds, lefts, rights, lengths, roots = [], [], [], [], [], []
    offset = 0
    for tree, used in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = tree.tree_
        leaf = t.children_left == -1
        features.append(np.where(leaf, -1, np.asarray(used)[np.maximum(t.feature, 0)]))
        thresholds.append(t.threshold.astype(np.float32))
        lefts.append(np.where(leaf, -1, t.children_left + offset))
        rights.append(np.where(leaf, -1, t.children_right + offset))
        lengths.append(_path_lengths(t))
        roots.append(offset)
        offset += t.node_count
    depth = max(int(tree.tree_.max_depth) for tree in forest.estimators_) + 1
    return (
        np.concatenate(features),
        np.concatenate(thresholds),
        np.concatenate(lefts),
        np.concatenate(rights),
        np.concatenate(lengths),
        np.asarray(roots),
        depth,
    )


def _average_path_length(n: int | float | NDArray[np.float64]) -> NDArray[np.float64]:
    """Expected path length of an unsuccessful BST search among n points (Liu et al.)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _path_lengths(tree: Any) -> NDArray[np.float64]:
    """Per node: edges from the root plus the expected remaining length below it."""
    left, right = tree.children_left, tree.children_right
    depth = np.zeros(tree.node_count, dtype=np.float64)
    stack = [0]
    while stack:
        node = stack.pop()
        if left[node] != -1:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
            stack.extend((int(left[node]), int(right[node])))
    lengths: NDArray[np.float64] = depth + _average_path_length(tree.n_node_samples)
    return lengths
