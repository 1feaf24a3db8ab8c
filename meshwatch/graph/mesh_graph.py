"""The communication graph: nodes keyed on stable identity, edges on (source, destination, port).

``record`` is on the ingest hot path and does a handful of dict lookups and integer adds per
call; everything that walks the graph (``snapshot``, ``expire``) runs on demand or on a timer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meshwatch.calls import Call, EdgeKey, Protocol, Workload
from meshwatch.graph.paths import PathTemplater
from meshwatch.graph.windows import SlidingWindow, WindowStats, bump


@dataclass(frozen=True, slots=True)
class GraphLimits:
    """Shape and bounds of the graph's statistics."""

    window: float = 60.0
    slices: int = 6
    edge_ttl: float = 3600.0
    max_paths: int = 64
    max_methods: int = 16


class Edge:
    """One directed edge and its statistics."""

    __slots__ = ("first_seen", "key", "last_seen", "protocol", "total_requests", "window")

    def __init__(self, key: EdgeKey, protocol: Protocol, t: float, limits: GraphLimits) -> None:
        self.key = key
        self.protocol = protocol
        self.first_seen = t
        self.last_seen = t
        self.total_requests = 0
        self.window = SlidingWindow(
            limits.window / limits.slices, limits.slices, limits.max_paths, limits.max_methods
        )


@dataclass(frozen=True, slots=True)
class EdgeView:
    """A read-only view of an edge for the API and later scoring."""

    key: EdgeKey
    protocol: Protocol
    first_seen: float
    last_seen: float
    total_requests: int
    stats: WindowStats


class MeshGraph:
    """Live graph of who calls whom. Single-threaded: owned by the ingest task."""

    def __init__(self, limits: GraphLimits) -> None:
        self.limits = limits
        self.nodes: dict[str, Workload] = {}
        self.edges: dict[tuple[str, str, int], Edge] = {}
        self._template = PathTemplater()

    def record(self, call: Call) -> Edge:
        """Count one call on its edge (creating nodes and the edge on first sight)."""
        source = call.source
        destination = call.destination
        key = (source.id, destination.id, call.port)
        t = call.time
        edge = self.edges.get(key)
        if edge is None:
            edge = self._new_edge(call, key)
        edge.last_seen = max(edge.last_seen, t)
        edge.total_requests += 1
        window = edge.window
        part = window.slice_for(t)
        part.requests += 1
        status = call.status
        if status >= 500:
            part.errors_5xx += 1
        elif status >= 400:
            part.errors_4xx += 1
        part.bytes_sent += call.bytes_sent
        part.bytes_received += call.bytes_received
        part.latency.add(call.duration_ms)
        if call.protocol is Protocol.HTTP:
            bump(part.paths, self._template(call.path), window.max_paths)
            bump(part.methods, call.method, window.max_methods)
        return edge

    def record_all(self, calls: Iterable[Call]) -> None:
        """Record many calls."""
        record = self.record
        for call in calls:
            record(call)

    def _new_edge(self, call: Call, key: tuple[str, str, int]) -> Edge:
        # Newer metadata (labels after a rollout) replaces older for the same stable identity.
        self.nodes[call.source.id] = call.source
        self.nodes[call.destination.id] = call.destination
        edge = Edge(EdgeKey(*key), call.protocol, call.time, self.limits)
        self.edges[key] = edge
        return edge

    def expire(self, now: float) -> tuple[int, int]:
        """Drop edges idle for longer than the TTL, then nodes left without edges."""
        horizon = now - self.limits.edge_ttl
        stale = [k for k, e in self.edges.items() if e.last_seen < horizon]
        for k in stale:
            del self.edges[k]
        live = {k[0] for k in self.edges} | {k[1] for k in self.edges}
        orphans = [n for n in self.nodes if n not in live]
        for n in orphans:
            del self.nodes[n]
        return len(stale), len(orphans)

    def snapshot(self, now: float) -> tuple[list[Workload], list[EdgeView]]:
        """Nodes and edges with their window statistics as of ``now``."""
        views = [
            EdgeView(
                e.key, e.protocol, e.first_seen, e.last_seen, e.total_requests, e.window.stats(now)
            )
            for e in self.edges.values()
        ]
        return list(self.nodes.values()), views
