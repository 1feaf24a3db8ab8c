"""Drive the monitor core with the timestamps carried by the calls.

Captured calls (training), simulated calls (evaluation) and the notebook run through the
same ``Monitor`` the live service runs; only the clock differs: window boundaries come from
the calls' own times (aligned to the epoch exactly as the live clock aligns them) instead of
a timer, and scoring runs inline instead of in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshwatch.calls import Call
from meshwatch.decoding.streams import EntryLimits
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.models import ModelBundle
from meshwatch.graph.mesh_graph import GraphLimits
from meshwatch.identity.resolving import IdentityResolver
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.events import AnomalyRaised, Event

REPLAY_EDGE_TTL = 10 * 86400.0
"""Replays span days of recorded time; an edge quiet for a night must not age out."""


def replay_monitor(
    params: DetectionParams,
    mode: Mode,
    bundle: ModelBundle | None = None,
    edge_ttl: float = REPLAY_EDGE_TTL,
) -> Monitor:
    """A core for replaying recorded or simulated calls. Their identities were resolved when
    they were recorded, so the resolver (for decoding ALS messages) keeps Istio's defaults."""
    return Monitor(
        GraphLimits(window=params.window, edge_ttl=edge_ttl),
        params,
        mode,
        bundle,
        IdentityResolver("cluster.local", "cluster.local"),
        EntryLimits(),
    )


def raised(events: Sequence[Event]) -> list[Anomaly]:
    """The anomalies among events, in order."""
    return [e.anomaly for e in events if isinstance(e, AnomalyRaised)]


class Replayer:
    """Feeds time-ordered calls, closing windows as their times pass boundaries."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.next_boundary: float | None = None

    def feed(self, calls: Iterable[Call]) -> list[Event]:
        monitor = self.monitor
        spec = monitor.window
        events: list[Event] = []
        batch: list[Call] = []
        for call in calls:
            if self.next_boundary is None:
                self.next_boundary = spec.next_boundary(call.time)
            if call.time >= self.next_boundary + spec.grace:
                events += monitor.ingest(batch)
                batch = []
                while call.time >= self.next_boundary + spec.grace:
                    events += monitor.close_window(self.next_boundary)
                    self.next_boundary += spec.window
            batch.append(call)
        events += monitor.ingest(batch)
        return events

    def advance_to(self, t: float) -> list[Event]:
        """Close every window ending at or before ``t``: the stream is complete up to ``t``
        (a quiet period, or the end of a recording), so no grace is waited for."""
        events: list[Event] = []
        while self.next_boundary is not None and t >= self.next_boundary:
            events += self.monitor.close_window(self.next_boundary)
            self.next_boundary += self.monitor.window.window
        return events
