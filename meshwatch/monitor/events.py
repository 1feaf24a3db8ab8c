"""What the monitor core reports, as typed values rather than callbacks into the caller.

Subscribers (logging, the API read model, metrics and, next, runtime defence) receive these
from ``Monitor.ingest``/``Monitor.close_window`` instead of reaching into the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshwatch.calls import Call, EdgeKey, Protocol, Workload
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.models import ModelCard


@dataclass(frozen=True, slots=True)
class EdgeAppeared:
    """The graph created an edge (first call since it started or since the edge aged out)."""

    edge: EdgeKey
    protocol: Protocol
    first_call: Call


@dataclass(frozen=True, slots=True)
class NodesMerged:
    """An actor first known by its certificate alone turned out to be ``node``."""

    old_id: str
    node: Workload
    edges_moved: int


@dataclass(frozen=True, slots=True)
class AnomalyRaised:
    """A new incident opened (novel edge, or a statistical verdict on a known edge)."""

    anomaly: Anomaly


@dataclass(frozen=True, slots=True)
class AnomalyEnded:
    """An incident saw no anomalous window for the cooldown and closed at ``at``."""

    anomaly: Anomaly
    at: float


@dataclass(frozen=True, slots=True)
class BaselinePromoted:
    """Learning ended: from now on the core observes with this model."""

    card: ModelCard
    known_edges: int
    at: float


@dataclass(frozen=True, slots=True)
class PromotionFailed:
    """Promotion was due but there is not enough to learn from yet; learning goes on."""

    reason: str
    at: float


Event = (
    EdgeAppeared | NodesMerged | AnomalyRaised | AnomalyEnded | BaselinePromoted | PromotionFailed
)
