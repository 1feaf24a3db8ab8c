"""A trained model with its card: what it was trained on, and what code it expects.

The card is how a model travels: scikit-learn version, meshwatch feature version and columns,
training window, edge count, window length, threshold and the false-alert rate it was set for.
A model whose card does not match the running code is refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import sklearn

from meshwatch import __version__
from meshwatch.calls import EdgeKey
from meshwatch.detection.baseline import Baseline
from meshwatch.detection.forest import EdgeIsolationForest
from meshwatch.detection.sequential import calibrate as calibrate_sequential
from meshwatch.detection.thresholds import Threshold, calibrate, per_window_rate
from meshwatch.errors import ModelError
from meshwatch.features.baselines import BaselineBuilder
from meshwatch.features.describing import iso
from meshwatch.features.rows import (
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    LATENCY_COLUMNS,
    TIME_COLUMNS,
    WindowRow,
)

MIN_TRAINING_ROWS = 50
MIN_CALIBRATION_COVERAGE = 0.1
"""Held-out windows x per-window false-alert rate below this: the threshold would be
extrapolated more than a decade past the sample, so a conservative fallback is used."""
CONSERVATIVE_SPREADS = 3.0


def conservative_threshold(model: EdgeIsolationForest, skip: frozenset[str] = frozenset()) -> float:
    """The lowest score of a window that is typical in every feature but one, which sits
    ``CONSERVATIVE_SPREADS`` spreads past the edge's median (above or below)."""
    columns = [i for i, c in enumerate(FEATURE_COLUMNS) if c not in TIME_COLUMNS and c not in skip]
    probes = np.zeros((2 * len(columns), len(FEATURE_COLUMNS)))
    for k, i in enumerate(columns):
        probes[2 * k, i] = CONSERVATIVE_SPREADS
        probes[2 * k + 1, i] = -CONSERVATIVE_SPREADS
    return float(model.anomaly_score(probes).min())


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


_DERIVED = frozenset({"training_from_time", "training_until_time"})
"""Card fields written for readers and recomputed from the epoch fields on load."""

_CARD_SCHEMA: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "meshwatch_version": (str,),
    "sklearn_version": (str,),
    "feature_version": (int,),
    "feature_columns": (list, tuple),
    "window_seconds": (int, float),
    "training_from": (int, float),
    "training_until": (int, float),
    "training_rows": (int,),
    "calibration_rows": (int,),
    "edge_count": (int,),
    "threshold": (int, float),
    "per_window_false_alert_rate": (int, float),
    "target_false_alerts_per_day": (int, float),
    "params": (dict,),
}


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    meshwatch_version: str
    sklearn_version: str
    feature_version: int
    feature_columns: tuple[str, ...]
    window_seconds: float
    training_from: float
    training_until: float
    training_rows: int
    calibration_rows: int
    edge_count: int
    threshold: float
    per_window_false_alert_rate: float
    target_false_alerts_per_day: float
    params: Mapping[str, Any]
    calibration_note: str = ""
    sequential_threshold: float = 0.0
    """CUSUM threshold for sustained drifts, calibrated on held-out windows (0: none)."""
    volume_threshold: float = 0.0
    """Threshold of the Poisson volume evidence, calibrated likewise (0: none)."""
    """Empty when the threshold was calibrated on enough held-out windows; otherwise why it
    is a conservative fallback (shown at promotion and in ``/api/v1/baseline``)."""

    def to_doc(self) -> dict[str, Any]:
        """The card as saved and served. ``training_from_time``/``training_until_time`` are
        the epoch fields in ISO 8601 UTC, for people; the epoch fields stay for programs."""
        doc = asdict(self)
        doc["feature_columns"] = list(self.feature_columns)
        doc["params"] = dict(self.params)
        doc["training_from_time"] = iso(self.training_from)
        doc["training_until_time"] = iso(self.training_until)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ModelCard:
        """Validate the card against its schema (``ModelError`` naming the first problem)."""
        if not isinstance(doc, Mapping):
            raise ModelError("model card is not a JSON object")
        for name, kinds in _CARD_SCHEMA.items():
            value = doc.get(name)
            if name not in doc or isinstance(value, bool) or not isinstance(value, kinds):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise ModelError(f"model card field {name!r} must be {wanted}, not {value!r}")
        for optional in ("sequential_threshold", "volume_threshold"):
            if isinstance(doc.get(optional, 0.0), bool) or not isinstance(
                doc.get(optional, 0.0), int | float
            ):
                raise ModelError(f"model card field {optional!r} must be a number")
        if not isinstance(doc.get("calibration_note", ""), str):
            raise ModelError("model card field 'calibration_note' must be a string")
        if not all(isinstance(c, str) for c in doc["feature_columns"]):
            raise ModelError("model card field 'feature_columns' must list column names")
        if not (math.isfinite(doc["threshold"]) and doc["window_seconds"] > 0):
            raise ModelError("model card has a non-finite threshold or a non-positive window")
        try:
            values = {k: v for k, v in doc.items() if k not in _DERIVED}
            values["feature_columns"] = tuple(values["feature_columns"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ModelError(f"model card is incomplete or malformed: {exc}") from exc

    def check_compatible(self, window_seconds: float | None = None) -> None:
        """Raise ``ModelError`` saying exactly what does not match the running code."""
        problems = []
        if self.feature_columns != FEATURE_COLUMNS:
            problems.append(
                f"feature columns {list(self.feature_columns)} != running {list(FEATURE_COLUMNS)}"
            )
        if self.feature_version != FEATURE_VERSION:
            problems.append(f"feature version {self.feature_version} != running {FEATURE_VERSION}")
        if _minor(self.sklearn_version) != _minor(sklearn.__version__):
            problems.append(
                f"trained with scikit-learn {self.sklearn_version}, running {sklearn.__version__}"
            )
        if window_seconds is not None and abs(self.window_seconds - window_seconds) > 1e-9:
            problems.append(
                f"trained on {self.window_seconds:g}s windows, running {window_seconds:g}s "
                f"(run with --window {self.window_seconds:g}, or retrain with --window {window_seconds:g})"
            )
        if problems:
            raise ModelError(
                f"model {self.name!r} does not match this meshwatch: "
                + "; ".join(problems)
                + " (retrain with `meshwatch train`)"
            )


@dataclass(frozen=True, slots=True)
class TrainingParams:
    n_estimators: int = 100
    max_samples: int | str = "auto"
    contamination: str | float = "auto"
    random_state: int = 7
    target_false_alerts_per_day: float = 1.0
    calibration_share: float = 0.25
    threshold_margin: float = 0.5  # how far past the calibration maximum to extrapolate
    min_requests: int = 5  # same floor as scoring: learn from the windows that will be scored
    use_latency: bool = True  # False: latency features are ignored by the model (measured)


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """What scoring needs: the model, its threshold, its card and the baseline it normalises with."""

    model: EdgeIsolationForest
    threshold: Threshold
    card: ModelCard
    baseline: Baseline

    def anomaly_scores(self, matrix: np.ndarray) -> np.ndarray:
        """Higher is worse. Safe to run in a worker thread (read-only)."""
        if matrix.shape[0] == 0:
            return np.zeros(0)
        if not self.card.params.get("use_latency", True):
            matrix = without_latency(matrix)
        return self.model.anomaly_score(matrix)


def without_latency(matrix: np.ndarray) -> np.ndarray:
    """The matrix with latency columns at the median (0): the model cannot use them."""
    out = np.array(matrix, dtype=np.float64, copy=True)
    out[:, [FEATURE_COLUMNS.index(c) for c in LATENCY_COLUMNS]] = 0.0
    return out


def build_baseline(
    rows: Sequence[WindowRow],
    paths: Mapping[EdgeKey, set[str]],
    known_edges: set[EdgeKey],
    calls: int,
) -> Baseline:
    builder = BaselineBuilder()
    for row in rows:
        builder.add(row, paths.get(row.edge, ()))
    return Baseline(
        known_edges=set(known_edges) | {r.edge for r in rows},
        edges=builder.build(),
        learned_from=min((r.end for r in rows), default=0.0),
        learned_until=max((r.end for r in rows), default=0.0),
        calls=calls,
    )


def normalised_matrix(rows: Sequence[WindowRow], baseline: Baseline) -> np.ndarray:
    return np.array([baseline.edges[r.edge].normalise(r) for r in rows], dtype=np.float64).reshape(
        -1, len(FEATURE_COLUMNS)
    )


def train(
    name: str,
    rows: Sequence[WindowRow],
    baseline: Baseline,
    window_seconds: float,
    params: TrainingParams,
) -> ModelBundle:
    """Fit on the earlier part of the rows (time order), calibrate the threshold on the rest."""
    usable = sorted(
        (r for r in rows if r.edge in baseline.edges and r.requests >= params.min_requests),
        key=lambda r: r.end,
    )
    if len(usable) < MIN_TRAINING_ROWS:
        raise ModelError(
            f"only {len(usable)} edge-windows to learn from; need at least {MIN_TRAINING_ROWS}"
        )
    # Calibrate on whole hours interleaved through the learning period (every 4th hour), not on
    # its tail: the threshold must have seen nights as well as peaks.
    blocks = max(2, round(1 / params.calibration_share))
    fit_rows = [r for r in usable if int(r.end // 3600) % blocks != blocks - 1]
    calibration_rows = [r for r in usable if int(r.end // 3600) % blocks == blocks - 1]
    if len(calibration_rows) < 10 or len(fit_rows) < MIN_TRAINING_ROWS // 2:
        split = int(len(usable) * (1 - params.calibration_share))
        fit_rows, calibration_rows = usable[:split], usable[split:]
    model = EdgeIsolationForest(
        n_estimators=params.n_estimators,
        max_samples=params.max_samples,
        contamination=params.contamination,
        random_state=params.random_state,
    )
    fit_matrix = normalised_matrix(fit_rows, baseline)
    calibration_matrix = normalised_matrix(calibration_rows, baseline)
    if not params.use_latency:
        fit_matrix, calibration_matrix = (
            without_latency(fit_matrix),
            without_latency(calibration_matrix),
        )
    model.fit(fit_matrix)
    scores = model.anomaly_score(calibration_matrix)
    by_edge: dict[EdgeKey, list[tuple[WindowRow, np.ndarray]]] = {}
    for row, x in zip(calibration_rows, calibration_matrix, strict=True):
        by_edge.setdefault(row.edge, []).append((row, x))
    sequential = calibrate_sequential((baseline.edges[e], rows) for e, rows in by_edge.items())
    rate = per_window_rate(params.target_false_alerts_per_day, len(baseline.edges), window_seconds)
    threshold = calibrate(scores, rate, params.threshold_margin)
    note = ""
    if len(calibration_rows) * rate < MIN_CALIBRATION_COVERAGE:
        # Too few held-out windows to say where the requested false-alert rate lies: an
        # extrapolation from them would be a guess. Fall back to a threshold only a clear
        # deviation crosses (one feature CONSERVATIVE_SPREADS spreads past its median).
        fallback = conservative_threshold(
            model, frozenset() if params.use_latency else LATENCY_COLUMNS
        )
        threshold = Threshold(max(threshold.value, fallback), rate)
        needed = math.ceil(MIN_CALIBRATION_COVERAGE / rate)
        note = (
            f"only {len(calibration_rows)} held-out windows to calibrate "
            f"{params.target_false_alerts_per_day:g} false alerts/day over {len(baseline.edges)} "
            f"edges (about {needed:,} needed): the threshold is a conservative fallback that only "
            f"a clear deviation crosses; learn longer for a calibrated one"
        )
    card = ModelCard(
        name=name,
        meshwatch_version=__version__,
        sklearn_version=sklearn.__version__,
        feature_version=FEATURE_VERSION,
        feature_columns=FEATURE_COLUMNS,
        window_seconds=window_seconds,
        training_from=usable[0].end,
        training_until=usable[-1].end,
        training_rows=len(fit_rows),
        calibration_rows=len(calibration_rows),
        edge_count=len(baseline.edges),
        threshold=threshold.value,
        per_window_false_alert_rate=rate,
        target_false_alerts_per_day=params.target_false_alerts_per_day,
        calibration_note=note,
        sequential_threshold=sequential.drift,
        volume_threshold=sequential.volume,
        params={
            "n_estimators": params.n_estimators,
            "max_samples": params.max_samples,
            "contamination": params.contamination,
            "random_state": params.random_state,
            "use_latency": params.use_latency,
        },
    )
    return ModelBundle(model, threshold, card, baseline)
