"""Turn scores into decisions: a threshold calibrated to a false-alert budget.

Kept apart from the score (as river's ``AnomalyFilter`` does) so the same model can be run
at a different budget without refitting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Threshold:
    """Scores at or above ``value`` are anomalous."""

    value: float
    per_window_rate: float  # the false-alert probability per edge-window it was set for

    def is_anomalous(self, score: float) -> bool:
        return score >= self.value


def per_window_rate(false_alerts_per_day: float, edges: int, window_seconds: float) -> float:
    """The per-edge-window false-alert probability that meets a daily budget for the mesh."""
    windows_per_day = 86400.0 / window_seconds
    return max(1e-9, false_alerts_per_day / (max(1, edges) * windows_per_day))


def calibrate(scores: Sequence[float] | np.ndarray, rate: float, margin: float = 0.25) -> Threshold:
    """The (1 - rate) quantile of normal scores. When the budget is finer than the sample can
    resolve (rate * n < 1), extrapolate past the maximum by ``margin`` of the max-to-median gap:
    an honest guess beats pretending the sample's maximum is the tail."""
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if values.size == 0:
        return Threshold(math.inf, rate)
    if rate * values.size >= 1:
        return Threshold(float(np.quantile(values, 1 - rate, method="higher")), rate)
    top, mid = float(values[-1]), float(np.median(values))
    return Threshold(top + margin * max(top - mid, 1e-6), rate)
