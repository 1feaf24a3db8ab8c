"""Anomaly records. Every one says why it fired: kind, score against threshold, the features
that deviate most from the edge's own baseline, and sample calls."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import Call


class AnomalyKind(enum.StrEnum):
    NEW_EDGE = "new-edge"
    STATISTICAL = "statistical"


@dataclass(frozen=True, slots=True)
class Deviation:
    """One feature, in its own units, against the edge's baseline median and p99."""

    feature: str
    value: float
    baseline_median: float
    baseline_p99: float
    z: float  # (value - median) / spread: ~1 at the edge's own p99

    def to_doc(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": round(self.value, 4),
            "baseline_median": round(self.baseline_median, 4),
            "baseline_p99": round(self.baseline_p99, 4),
            "z": round(self.z, 2),
        }


@dataclass(frozen=True, slots=True)
class SampleCall:
    time: float
    method: str
    path: str
    status: int

    @classmethod
    def of(cls, call: Call) -> SampleCall:
        return cls(call.time, call.method, call.path.partition("?")[0], call.status)

    def to_doc(self) -> dict[str, Any]:
        return {"time": self.time, "method": self.method, "path": self.path, "status": self.status}


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
    def edge(self) -> tuple[str, str, int]:
        return (self.source, self.target, self.port)

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "source": self.source,
            "target": self.target,
            "port": self.port,
            "score": None if math.isinf(self.score) else round(self.score, 4),
            "threshold": None if math.isinf(self.threshold) else round(self.threshold, 4),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "windows": self.windows,
            "reason": self.reason,
            "deviations": [d.to_doc() for d in self.deviations],
            "samples": [s.to_doc() for s in self.samples],
        }
