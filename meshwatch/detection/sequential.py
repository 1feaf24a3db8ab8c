"""Sustained small deviations: one-sided CUSUMs per edge, for an attacker who "does a bit
more" for a while.

The forest judges one window at a time, so a 3x volume increase that follows the diurnal
curve, or 2.5x a small error rate, stays inside what a single window may do. Summed over
consecutive windows it does not. Two kinds of evidence accumulate per edge:

* **Volume, as Poisson evidence.** The edge's calls in a window are compared with what its
  caller's load predicts (the caller's served requests times the edge's learned calls per
  request): ``llr = n ln(rho) - (rho - 1) * expected``, the log-likelihood ratio of "rho times
  the usual rate" against "the usual rate". Counts, not normalised values: 30 calls where 10
  were expected is strong evidence, 3 where 1 was expected is weak, and the sum knows it.
* **Other features, in spreads.** ``S = max(0, S + z - ALLOWANCE)`` on the normalised share of
  the caller's calls, 5xx ratio and payload sizes (about 1 at the edge's own p99).

Both thresholds are calibrated at training on held-out normal windows (the highest sum normal
traffic reached, with a margin), so their false-alert cost is measured, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from meshwatch.calls import EdgeKey
from meshwatch.features.baselines import EdgeBaseline
from meshwatch.features.rows import FEATURE_COLUMNS, WindowRow

DRIFT_FEATURES: tuple[str, ...] = (
    "edge_share",
    "ratio_5xx",
    "log_bytes_received_per_req",
    "log_bytes_sent_per_req",
)
"""Only upward drift: a larger share of the caller's calls, more server errors, larger
payloads. A drop is what an edge does when its neighbour is the one under attack."""
VOLUME = "log_fanout"
ALLOWANCE = 0.5
VOLUME_SHIFT = (
    3.0  # the rate multiple the volume evidence is tuned to detect (CUSUM is optimal there)
)
MIN_DRIFT_THRESHOLD = 6.0
MIN_VOLUME_THRESHOLD = 12.0
CALIBRATION_MARGIN = 1.5
_INDEX = np.array([FEATURE_COLUMNS.index(c) for c in DRIFT_FEATURES])


def volume_evidence(row: WindowRow, baseline: EdgeBaseline) -> float | None:
    """Log-likelihood ratio of ``VOLUME_SHIFT`` times the usual calls per request the caller
    serves, for this window; None for an entry point (it serves no requests)."""
    if row.caller_inbound <= 0 or baseline.per_request <= 0:
        return None
    # Any bias in the expectation would build into evidence, window after window: the rate is
    # learned as a ratio of sums (calls over requests served), unbiased at low counts.
    expected = max(0.5, baseline.per_request * row.caller_inbound)
    llr = row.requests * math.log(VOLUME_SHIFT) - (VOLUME_SHIFT - 1) * expected
    return llr / baseline.dispersion  # quasi-likelihood: overdispersed counts weigh less


@dataclass(frozen=True, slots=True)
class Drift:
    """A sustained upward drift of one feature on one edge."""

    feature: str
    evidence: float  # the CUSUM statistic
    threshold: float
    windows: int  # consecutive windows it has been building


@dataclass(frozen=True, slots=True)
class Thresholds:
    drift: float = 0.0  # 0: off (models trained before sequential evidence)
    volume: float = 0.0


@dataclass
class Cusum:
    """Per-edge CUSUM state, updated once per scored window of the edge."""

    thresholds: Thresholds
    _drift: dict[EdgeKey, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _volume: dict[EdgeKey, tuple[float, int]] = field(default_factory=dict)

    def update(
        self, row: WindowRow, normalised: np.ndarray, baseline: EdgeBaseline
    ) -> Drift | None:
        """Add one window; the strongest drift past its threshold, if any (its sum resets)."""
        edge = row.edge
        found: list[Drift] = []
        sums, runs = self._drift.get(edge, (np.zeros(len(_INDEX)), np.zeros(len(_INDEX))))
        sums = np.maximum(0.0, sums + normalised[_INDEX] - ALLOWANCE)
        runs = np.where(sums > 0, runs + 1, 0)
        k = int(np.argmax(sums))
        if self.thresholds.drift > 0 and sums[k] >= self.thresholds.drift:
            found.append(
                Drift(DRIFT_FEATURES[k], float(sums[k]), self.thresholds.drift, int(runs[k]))
            )
            sums[k], runs[k] = 0.0, 0
        self._drift[edge] = (sums, runs)
        llr = volume_evidence(row, baseline)
        if llr is not None:
            total, run = self._volume.get(edge, (0.0, 0))
            total = max(0.0, total + llr)
            run = run + 1 if total > 0 else 0
            if self.thresholds.volume > 0 and total >= self.thresholds.volume:
                found.append(Drift(VOLUME, total, self.thresholds.volume, run))
                total, run = 0.0, 0
            self._volume[edge] = (total, run)
        return max(found, key=lambda d: d.evidence / d.threshold, default=None)


def calibrate(
    series: Iterable[tuple[EdgeBaseline, Sequence[tuple[WindowRow, np.ndarray]]]],
) -> Thresholds:
    """Thresholds from held-out normal windows: each series one edge's (row, normalised row)
    in time order. The highest sums they reached, with a margin, never below the minimums."""
    top_drift = top_volume = 0.0
    for baseline, rows in series:
        sums = np.zeros(len(_INDEX))
        volume = 0.0
        for row, x in rows:
            sums = np.maximum(0.0, sums + x[_INDEX] - ALLOWANCE)
            top_drift = max(top_drift, float(sums.max()))
            llr = volume_evidence(row, baseline)
            if llr is not None:
                volume = max(0.0, volume + llr)
                top_volume = max(top_volume, volume)
    return Thresholds(
        max(MIN_DRIFT_THRESHOLD, CALIBRATION_MARGIN * top_drift),
        max(MIN_VOLUME_THRESHOLD, CALIBRATION_MARGIN * top_volume),
    )
