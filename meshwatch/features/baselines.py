"""Each edge's own baseline, so busy and quiet edges share one model.

A baseline holds, per edge and per feature, the median and the 99th percentile of the values
seen while learning, plus the path templates the edge used. ``normalise`` maps a raw row to
``(value - median) / spread`` with ``spread = max(p99 - median, floor)``: about 0 for a
typical window, about 1 at the edge's own p99, far above for anything it never did. Floors
keep constant features (an edge that never errs) from dividing by zero while still letting a
real change stand out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from meshwatch.calls import EdgeKey
from meshwatch.features.rows import EDGE_COLUMNS, FEATURE_COLUMNS, TIME_COLUMNS, WindowRow

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
}
MAX_PATHS_PER_EDGE = 512


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class FeatureStats:
    median: float
    p99: float

    @property
    def spread(self) -> float:
        return self.p99 - self.median


@dataclass(slots=True)
class EdgeBaseline:
    """What one edge looked like while meshwatch learned."""

    stats: dict[str, FeatureStats]
    paths: set[str]
    windows: int
    first_seen: float

    def normalise(self, row: WindowRow) -> list[float]:
        out = []
        for column, value in zip(FEATURE_COLUMNS, row.values, strict=True):
            if column in TIME_COLUMNS:
                out.append(value)
                continue
            s = self.stats[column]
            out.append((value - s.median) / max(s.spread, FLOORS[column]))
        return out

    def to_doc(self) -> dict[str, Any]:
        return {
            "stats": {c: [s.median, s.p99] for c, s in self.stats.items()},
            "paths": sorted(self.paths),
            "windows": self.windows,
            "first_seen": self.first_seen,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> EdgeBaseline:
        return cls(
            stats={c: FeatureStats(float(v[0]), float(v[1])) for c, v in doc["stats"].items()},
            paths=set(doc.get("paths", [])),
            windows=int(doc.get("windows", 0)),
            first_seen=float(doc.get("first_seen", 0.0)),
        )


# A fresh edge with too few windows borrows neutral stats until it has history.
NEUTRAL = {c: FeatureStats(0.0, 0.0) for c in EDGE_COLUMNS}


@dataclass
class BaselineBuilder:
    """Accumulates rows while learning; ``build`` turns them into per-edge baselines."""

    rows: dict[EdgeKey, list[tuple[float, ...]]] = field(default_factory=lambda: defaultdict(list))
    paths: dict[EdgeKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    first_seen: dict[EdgeKey, float] = field(default_factory=dict)

    def add(self, row: WindowRow, paths: Iterable[str]) -> None:
        self.rows[row.edge].append(row.values)
        known = self.paths[row.edge]
        for p in paths:
            if len(known) < MAX_PATHS_PER_EDGE:
                known.add(p)
        self.first_seen.setdefault(row.edge, row.end)

    def build(self) -> dict[EdgeKey, EdgeBaseline]:
        out = {}
        for edge, values in self.rows.items():
            columns = list(zip(*values, strict=True))
            stats = {
                c: FeatureStats(float(median(columns[i])), float(_p99(list(columns[i]))))
                for i, c in enumerate(FEATURE_COLUMNS)
                if c not in TIME_COLUMNS
            }
            out[edge] = EdgeBaseline(
                stats, set(self.paths[edge]), len(values), self.first_seen[edge]
            )
        return out
