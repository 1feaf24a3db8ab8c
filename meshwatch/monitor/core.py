"""``Monitor``: decoded entries and window boundaries in, typed events out.

Synchronous and transport-free. Its drivers differ only in where the clock comes from and
where the two CPU-heavy steps run:

* the live service (``runtime``) closes windows on the wall clock and runs ``WindowWork.score``
  and ``PromotionPlan.fit`` in a worker thread;
* replay (``monitor.replaying``) closes windows at the calls' own timestamps and runs both
  inline.

Everything else (alias merge, graph update, novel-edge check, learning, incidents) is this
one code path. ``close_window`` is the inline composition of the same steps the live
service calls one by one; the live-equals-replay test holds the two to identical anomalies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshwatch.calls import Call, EdgeKey, WindowSpec
from meshwatch.decoding.streams import Decoder, DecodeResult, EntryLimits, StreamIdentity
from meshwatch.detection.engine import DetectionEngine, DetectionParams, Mode, PromotionPlan
from meshwatch.detection.models import ModelBundle
from meshwatch.errors import ModelError
from meshwatch.features.rows import WindowRow
from meshwatch.graph.mesh_graph import EdgeView, GraphLimits, MeshGraph
from meshwatch.identity.resolving import IdentityResolver
from meshwatch.monitor.events import (
    AnomalyEnded,
    AnomalyRaised,
    BaselinePromoted,
    EdgeAppeared,
    Event,
    NodesMerged,
    PromotionFailed,
)


@dataclass(frozen=True, slots=True)
class WindowWork:
    """One closed window's rows to score, with the model that must score them."""

    end: float
    rows: list[WindowRow]
    matrix: np.ndarray
    views: list[EdgeView]
    bundle: ModelBundle

    def score(self) -> np.ndarray:
        """Higher is worse. Read-only on the model: safe in a worker thread."""
        return self.bundle.anomaly_scores(self.matrix)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one ALS message became."""

    decoded: DecodeResult
    events: list[Event]


class Monitor:
    """The graph, identity merge, detection and window clock of one meshwatch."""

    def __init__(
        self,
        limits: GraphLimits,
        params: DetectionParams,
        mode: Mode,
        bundle: ModelBundle | None,
        resolver: IdentityResolver,
        entry_limits: EntryLimits,
    ) -> None:
        if limits.window != params.window:
            raise ValueError("the graph and detection must share one window")
        self.window: WindowSpec = params.window
        self.graph = MeshGraph(limits)
        self.engine = DetectionEngine(params, mode, bundle)
        self.resolver = resolver
        self.decoder = Decoder(resolver, entry_limits)
        self._generation = resolver.generation

    # -- traffic ------------------------------------------------------------------------

    def ingest_message(self, stream: StreamIdentity, message: Any, received_at: float) -> Ingested:
        """Decode one ALS message of ``stream`` and ingest its calls. Malformed entries are
        left out and counted in the result; ``received_at`` is the receiver's clock, where
        entries claiming implausible times are placed."""
        decoded = self.decoder.decode(stream, message, received_at)
        events = self._merge_aliases()
        events += self.ingest(decoded.calls)
        return Ingested(decoded, events)

    def _merge_aliases(self) -> list[Event]:
        resolver = self.resolver
        if resolver.generation == self._generation:
            return []
        self._generation = resolver.generation
        events: list[Event] = []
        for old_id, workload in resolver.take_aliases():
            moved = self.graph.merge_node(old_id, workload)
            events.append(NodesMerged(old_id, workload, moved))
        return events

    def ingest(self, calls: Sequence[Call]) -> list[Event]:
        """Record decoded calls; the novel-edge check runs on the edges they create."""
        engine = self.engine
        engine.on_calls(calls)
        events: list[Event] = []
        for edge, first in self.graph.record_all(calls):
            events.append(EdgeAppeared(edge.key, edge.protocol, first))
            anomaly = engine.on_new_edge(edge.key, first)
            if anomaly is not None:
                events.append(AnomalyRaised(anomaly))
        return events

    # -- the window clock ----------------------------------------------------------------

    def promotion_due(self, end: float) -> bool:
        return self.engine.should_promote(end)

    def plan_promotion(self, name: str = "learned") -> PromotionPlan:
        """``ModelError`` when there is too little to learn from."""
        return self.engine.plan_promotion(name)

    def adopt(self, bundle: ModelBundle, at: float) -> list[Event]:
        """Start observing with a fitted bundle."""
        self.engine.adopt(bundle)
        return [BaselinePromoted(bundle.card, len(bundle.baseline.known_edges), at)]

    def window_views(self, end: float) -> list[EdgeView]:
        """The window ending at ``end``, read now (``open_window`` takes it later)."""
        return self.graph.snapshot(end)[1]

    def open_window(self, end: float, views: list[EdgeView] | None = None) -> WindowWork | None:
        """Take the window ending at ``end``: learn from it, or return its rows to score.
        ``views``: the window as read before a promotion (live), not after it."""
        if views is None:
            views = self.window_views(end)
        rows, matrix = self.engine.window_rows(views, end)
        bundle = self.engine.bundle
        if self.engine.mode is not Mode.OBSERVE or bundle is None or not rows:
            return None
        return WindowWork(end, rows, matrix, views, bundle)

    def finish_window(self, end: float, work: WindowWork | None, scores: np.ndarray) -> list[Event]:
        """Decide on the scored rows, then close incidents past their cooldown."""
        events: list[Event] = []
        if work is not None:
            fresh = self.engine.decide(work.rows, scores, work.views, end, work.matrix)
            events += [AnomalyRaised(a) for a in fresh]
        if self.engine.mode is Mode.OBSERVE:
            events += [AnomalyEnded(a, end) for a in self.engine.expire_incidents(end)]
        return events

    def close_window(self, end: float) -> list[Event]:
        """Everything at a window boundary, inline (replay). The live service runs the same
        steps with ``fit`` and ``score`` in a worker thread."""
        events: list[Event] = []
        if self.promotion_due(end):
            try:
                events += self.adopt(self.plan_promotion().fit(), end)
            except ModelError as exc:
                events.append(PromotionFailed(str(exc), end))
        work = self.open_window(end)
        scores = work.score() if work is not None else np.zeros(0)
        events += self.finish_window(end, work, scores)
        return events

    # -- housekeeping ----------------------------------------------------------------------

    def expire(self, now: float) -> tuple[int, int]:
        """Age out idle edges and orphaned nodes: (edges, nodes) removed."""
        return self.graph.expire(now)

    def approve(self, source: str, destination: str, port: int | None, at: float) -> list[Event]:
        """An operator accepts ``source -> destination`` (on ``port``, or on every port it is
        seen on) as normal: the incidents on it end now."""
        candidates = set(self.graph.edges) | set(self.engine.open)
        edges = sorted(
            e
            for e in candidates
            if e.source == source
            and e.destination == destination
            and (port is None or e.port == port)
        )
        if port is not None and EdgeKey(source, destination, port) not in edges:
            edges.append(EdgeKey(source, destination, port))
        pair = (source, destination) if port is None else None
        return [AnomalyEnded(a, at) for a in self.engine.approve(edges, pair)]

    def edge_status(self, edge: EdgeKey) -> tuple[str, float | None]:
        return self.engine.edge_status(edge)
