"""Why a window was anomalous, in words an operator can act on, and what kind it is.

An anomaly names only the features that lie outside what the edge did while learning (its
learned range, widened by the feature's floor), in the units people read. When none does and
the forest alone isolates the window, it is an unusual combination: the features that drive
the isolation are found by ablation (each one set back to the edge's median, the window
rescored) and shown with their values against the baseline.

Kind: a window out of range only in latency is ``performance``, never security: latency
shifts with load, noisy neighbours and deployments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from meshwatch.detection.anomalies import AnomalyKind, Deviation
from meshwatch.detection.sequential import Drift
from meshwatch.features.baselines import FLOORS, UPWARD_ONLY, EdgeBaseline
from meshwatch.features.describing import fmt, fmt_range, label
from meshwatch.features.rows import FEATURE_COLUMNS, LATENCY_COLUMNS, TIME_COLUMNS, WindowRow

Scorer = Callable[[np.ndarray], np.ndarray]
SIGNED = frozenset({"log_fanout"})


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: AnomalyKind
    reason: str
    deviations: list[Deviation]


def deviation(column: str, value: float, baseline: EdgeBaseline) -> Deviation:
    s = baseline.stats[column]
    floor = FLOORS[column]
    low, high = s.learned_range(floor)
    if column not in SIGNED:
        low = max(low, 0.0)  # counts, ratios and log1p values are never negative
    z = s.z(value, floor)
    outside = value > high + 1e-9 or (value < low - 1e-9 and column not in UPWARD_ONLY)
    text = f"{label(column)} {fmt(column, value)} ({fmt_range(column, low, high)})"
    return Deviation(column, value, s.median, s.p99, z, low, high, outside, text)


def explain(
    row: WindowRow,
    normalised: np.ndarray,
    baseline: EdgeBaseline,
    score: Scorer,
    top: int,
) -> Verdict:
    """The kind and the reason of an anomalous window of one edge."""
    all_deviations = [
        deviation(c, v, baseline)
        for c, v in zip(FEATURE_COLUMNS, row.values, strict=True)
        if c not in TIME_COLUMNS and not math.isnan(v)
    ]
    outside = [d for d in all_deviations if d.out_of_range]
    if outside:
        # security-relevant features first, then by how far out they are
        outside.sort(key=lambda d: (d.feature in LATENCY_COLUMNS, -abs(d.z)))
        kind = (
            AnomalyKind.PERFORMANCE
            if all(d.feature in LATENCY_COLUMNS for d in outside)
            else AnomalyKind.STATISTICAL
        )
        shown = outside[:top]
        more = len(outside) - len(shown)
        reason = "; ".join(d.text for d in shown) + (f"; and {more} more" if more else "")
        return Verdict(kind, reason, outside)
    drivers = _drivers(row, normalised, score, all_deviations)[:top]
    kind = (
        AnomalyKind.PERFORMANCE
        if drivers and all(d.feature in LATENCY_COLUMNS for d in drivers)
        else AnomalyKind.STATISTICAL
    )
    reason = "unusual combination, no single feature outside its learned range: " + "; ".join(
        d.text for d in drivers
    )
    return Verdict(kind, reason, drivers)


def sustained(drift: Drift, row: WindowRow, baseline: EdgeBaseline) -> Verdict:
    """A run of windows each a little high in one feature (see ``detection.sequential``)."""
    d = deviation(drift.feature, row.value(drift.feature), baseline)
    reason = (
        f"sustained rise over {drift.windows} windows: {d.text}; evidence "
        f"{drift.evidence:.1f} >= {drift.threshold:.1f}"
    )
    return Verdict(AnomalyKind.STATISTICAL, reason, [d])


def _drivers(
    row: WindowRow, normalised: np.ndarray, score: Scorer, deviations: list[Deviation]
) -> list[Deviation]:
    """Features by how much the score drops when each is set back to the edge's median."""
    by_feature = {d.feature: d for d in deviations}
    columns = [i for i, c in enumerate(FEATURE_COLUMNS) if c not in TIME_COLUMNS]
    variants = np.repeat(normalised.reshape(1, -1), len(columns), axis=0)
    for k, i in enumerate(columns):
        variants[k, i] = 0.0
    base = float(score(normalised.reshape(1, -1))[0])
    drops = base - score(variants)
    ranked = sorted(zip(drops, columns, strict=True), key=lambda t: -t[0])
    return [by_feature[FEATURE_COLUMNS[i]] for drop, i in ranked if drop > 0]
