"""Anomaly records. Every one says why it fired: kind, score against threshold, the features
that deviate most from the edge's own baseline, and sample calls. Their JSON form is the
read model's (``monitor.readmodel.anomaly_doc``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from meshwatch.calls import Call, EdgeKey


class AnomalyKind(enum.StrEnum):
    NEW_EDGE = "new-edge"
    STATISTICAL = "statistical"
    PERFORMANCE = "performance"

    @property
    def security(self) -> bool:
        """Security alerts count toward the alert budget and may lead to a deny; performance
        anomalies (latency alone out of range) are listed, never more."""
        return self is not AnomalyKind.PERFORMANCE


@dataclass(frozen=True, slots=True)
class Deviation:
    """One feature against what the edge did while learning.

    ``value``, ``baseline_*`` and ``learned_*`` are in the feature's model units (log rates,
    smoothed ratios); ``text`` says it in the units people read."""

    feature: str
    value: float
    baseline_median: float
    baseline_p99: float
    z: float  # (value - median) / spread: ~1 at the edge's own p99
    learned_low: float = 0.0
    learned_high: float = 0.0
    out_of_range: bool = False
    text: str = ""


@dataclass(frozen=True, slots=True)
class SampleCall:
    time: float
    method: str
    path: str
    status: int

    @classmethod
    def of(cls, call: Call) -> SampleCall:
        return cls(call.time, call.method, call.path.partition("?")[0], call.status)


@dataclass(slots=True)
class Anomaly:
    """An incident on one edge. Consecutive anomalous windows extend it, not duplicate it."""

    id: str
    kind: AnomalyKind
    source: str
    target: str
    port: int
    score: float
    threshold: float
    first_seen: float
    last_seen: float
    reason: str
    deviations: list[Deviation] = field(default_factory=list)
    samples: list[SampleCall] = field(default_factory=list)
    windows: int = 1

    @property
    def edge(self) -> EdgeKey:
        return EdgeKey(self.source, self.target, self.port)
