"""Each edge's own baseline, so busy and quiet edges share one model.

A baseline holds, per edge and per feature, the median and the 99th percentile of the values
seen while learning, plus the path templates the edge used. ``normalise`` maps a raw row to
``(value - median) / spread`` with ``spread = max(p99 - median, floor)`` above the median and
``max(median - p01, floor)`` below: about 0 for a typical window, about 1 at the edge's own
p99 (and -1 at its p01), far out for anything it never did. Floors
keep constant features (an edge that never errs) from dividing by zero while still letting a
real change stand out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from meshwatch.calls import EdgeKey
from meshwatch.features.rows import FEATURE_COLUMNS, TIME_COLUMNS, WindowRow

# Smallest spread per feature, in that feature's units.
FLOORS: Mapping[str, float] = {
    "log_rate": 0.35,  # ~40 % more requests than the p99
    "ratio_5xx": 0.04,
    "ratio_4xx": 0.06,
    "log_bytes_sent_per_req": 0.3,
    "log_bytes_received_per_req": 0.3,
    "log_latency_p50": 0.4,
    "log_latency_p99": 0.5,
    "distinct_paths": 2.0,
    "unseen_path_share": 0.08,
    "distinct_methods": 1.0,
    "edge_share": 0.08,
    "log_fanout": 0.35,
}
MAX_PATHS_PER_EDGE = 512
UPWARD_ONLY = frozenset({"edge_share", "log_fanout"})
"""Load-normalised volume counts only upward: when an attacker makes one edge busier, the
caller's other edges lose share and the callee's own calls per request fall. Those edges are
bystanders, not anomalies."""


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


MAX_DISPERSION = 50.0


def _per_request(loads: list[tuple[int, int]]) -> float:
    served = sum(inbound for _, inbound in loads)
    return sum(n for n, _ in loads) / served if served else 0.0


def _dispersion(loads: list[tuple[int, int]], per_request: float) -> float:
    """Mean squared Pearson residual of the edge's calls against its caller's load."""
    if len(loads) < 2 or per_request <= 0:
        return 1.0
    total = 0.0
    for n, inbound in loads:
        expected = max(0.5, per_request * inbound)
        total += (n - expected) ** 2 / expected
    return min(MAX_DISPERSION, max(1.0, total / len(loads)))


@dataclass(frozen=True, slots=True)
class FeatureStats:
    """A feature's learned median, 99th and 1st percentiles on one edge."""

    median: float
    p99: float
    p01: float | None = None  # None in baselines saved before the low side was kept

    @property
    def spread(self) -> float:
        return self.p99 - self.median

    def z(self, value: float, floor: float) -> float:
        """Distance from the median in the edge's own spread on that side: about 1 at its p99
        above, about -1 at its p01 below. Below and above differ for skewed features (a
        request rate whose nights are five times quieter than its peak)."""
        if value < self.median and self.p01 is not None:
            return (value - self.median) / max(self.median - self.p01, floor)
        return (value - self.median) / max(self.spread, floor)

    def learned_range(self, floor: float) -> tuple[float, float]:
        """What this edge did while learning, widened to at least ``floor`` around the
        median: a value outside it is something the edge never did."""
        low = self.median if self.p01 is None else self.p01
        return (min(low, self.median - floor), max(self.p99, self.median + floor))


@dataclass(slots=True)
class EdgeBaseline:
    """What one edge looked like while meshwatch learned."""

    stats: dict[str, FeatureStats]
    paths: set[str]
    windows: int
    first_seen: float
    calls: int = 0
    per_request: float = 0.0
    """Calls on this edge per request its caller served, over everything learned (sum over
    sum: unbiased at any load, unlike a median of small-count ratios). 0: unknown."""
    dispersion: float = 1.0
    """How much more the edge's calls vary around what its caller's load predicts than a
    Poisson count would (1: Poisson). Volume evidence is divided by it (quasi-likelihood)."""

    def normalise(self, row: WindowRow) -> list[float]:
        out = []
        for column, value in zip(FEATURE_COLUMNS, row.values, strict=True):
            if column in TIME_COLUMNS:
                out.append(value)
                continue
            if math.isnan(value):
                out.append(0.0)  # unknown (too little load to say): read as typical
                continue
            z = self.stats[column].z(value, FLOORS[column])
            out.append(max(0.0, z) if column in UPWARD_ONLY else z)
        return out

    def to_doc(self) -> dict[str, Any]:
        return {
            "stats": {
                c: [s.median, s.p99] if s.p01 is None else [s.median, s.p99, s.p01]
                for c, s in self.stats.items()
            },
            "paths": sorted(self.paths),
            "windows": self.windows,
            "first_seen": self.first_seen,
            "calls": self.calls,
            "per_request": self.per_request,
            "dispersion": self.dispersion,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> EdgeBaseline:
        return cls(
            stats={
                c: FeatureStats(float(v[0]), float(v[1]), float(v[2]) if len(v) > 2 else None)
                for c, v in doc["stats"].items()
            },
            paths=set(doc.get("paths", [])),
            windows=int(doc.get("windows", 0)),
            first_seen=float(doc.get("first_seen", 0.0)),
            calls=int(doc.get("calls", 0)),
            per_request=float(doc.get("per_request", 0.0)),
            dispersion=float(doc.get("dispersion", 1.0)),
        )


@dataclass
class BaselineBuilder:
    """Accumulates rows while learning; ``build`` turns them into per-edge baselines."""

    rows: dict[EdgeKey, list[tuple[float, ...]]] = field(default_factory=lambda: defaultdict(list))
    paths: dict[EdgeKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    first_seen: dict[EdgeKey, float] = field(default_factory=dict)
    calls: dict[EdgeKey, int] = field(default_factory=lambda: defaultdict(int))
    loads: dict[EdgeKey, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, row: WindowRow, paths: Iterable[str]) -> None:
        self.rows[row.edge].append(row.values)
        self.calls[row.edge] += row.requests
        if row.caller_inbound > 0:
            self.loads[row.edge].append((row.requests, row.caller_inbound))
        known = self.paths[row.edge]
        for p in paths:
            if len(known) < MAX_PATHS_PER_EDGE:
                known.add(p)
        self.first_seen.setdefault(row.edge, row.end)

    def build(self) -> dict[EdgeKey, EdgeBaseline]:
        out = {}
        for edge, values in self.rows.items():
            columns = list(zip(*values, strict=True))
            stats = {}
            for i, c in enumerate(FEATURE_COLUMNS):
                if c in TIME_COLUMNS:
                    continue
                ordered = sorted(v for v in columns[i] if not math.isnan(v)) or [0.0]
                stats[c] = FeatureStats(
                    float(median(ordered)),
                    float(_quantile(ordered, 0.99)),
                    float(_quantile(ordered, 0.01)),
                )
            out[edge] = EdgeBaseline(
                stats,
                set(self.paths[edge]),
                len(values),
                self.first_seen[edge],
                self.calls[edge],
                _per_request(self.loads[edge]),
                _dispersion(self.loads[edge], _per_request(self.loads[edge])),
            )
        return out
