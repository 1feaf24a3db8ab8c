"""The communication graph: nodes keyed on stable identity, edges on (source, destination, port).

``record`` is on the ingest hot path and does a handful of dict lookups and integer adds per
call; everything that walks the graph (``snapshot``, ``expire``) runs on demand or on a timer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from math import ceil, log
from types import ModuleType

from meshwatch.calls import Call, EdgeKey, Protocol, WindowSpec, Workload
from meshwatch.graph.paths import template_path
from meshwatch.graph.sketches import MIN_VALUE, QuantileSketch
from meshwatch.graph.windows import Slice, SlidingWindow, WindowStats, bump

_HTTP = Protocol.HTTP
SAMPLES = 4
_MAX_TEMPLATES = 100_000
_MAX_TEMPLATE_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GraphLimits:
    """Shape and bounds of the graph's statistics."""

    window: WindowSpec = field(default_factory=WindowSpec)
    edge_ttl: float = 3600.0
    max_paths: int = 64
    max_methods: int = 16
    native: bool = True
    """Record with the native recorder (``graph/_recording.pyx``) when it is built; False
    forces the Python one (``ingest_decoder=upb`` does). Both give the same graph."""


class Edge:
    """One directed edge and its statistics."""

    __slots__ = (
        "first_seen",
        "key",
        "last_seen",
        "protocol",
        "samples",
        "total_requests",
        "window",
    )

    def __init__(self, key: EdgeKey, protocol: Protocol, t: float, limits: GraphLimits) -> None:
        self.key = key
        self.protocol = protocol
        self.first_seen = t
        self.last_seen = t
        self.total_requests = 0
        self.samples: list[Call | None] = [None] * SAMPLES  # the last few calls, for explanations
        self.window = SlidingWindow(
            limits.window.slice_seconds,
            limits.window.slices,
            limits.max_paths,
            limits.max_methods,
            limits.window.grace_slices,
        )

    def absorb(self, other: Edge) -> None:
        """Merge another edge's statistics into this one (same direction and port)."""
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.total_requests += other.total_requests
        self.window.absorb(other.window)


@dataclass(frozen=True, slots=True)
class EdgeView:
    """A read-only view of an edge for the API and later scoring."""

    key: EdgeKey
    protocol: Protocol
    first_seen: float
    last_seen: float
    total_requests: int
    stats: WindowStats
    samples: tuple[Call, ...] = ()


class MeshGraph:
    """Live graph of who calls whom. Single-threaded: owned by the ingest task."""

    def __init__(self, limits: GraphLimits) -> None:
        self.limits = limits
        self.nodes: dict[str, Workload] = {}
        self.edges: dict[EdgeKey, Edge] = {}
        self._template = template_path
        self._template_cache: dict[str, str] = {}
        self._template_chars = 0
        self._native = _recording if limits.native else None
        self._forget_edges()

    def _forget_edges(self) -> None:
        """Drop the native recorder's identity table of edges (``_recording.EdgeCache``).
        Called whenever an edge leaves ``edges`` or changes key: the table must never hand
        out an edge the dict no longer maps to its calls."""
        self._front: object = self._native.EdgeCache() if self._native is not None else None

    def record(self, call: Call) -> Edge:
        """Count one call on its edge (creating nodes and the edge on first sight)."""
        return self._record(call, self.edges, self._template_cache)

    def _record(self, call: Call, edges: dict[EdgeKey, Edge], templates: dict[str, str]) -> Edge:
        # Hot path: everything below is inlined on purpose (a Python call costs ~50 ns, and
        # this runs once per call ingested). The key is a plain tuple: it hashes and compares
        # equal to the ``EdgeKey`` stored in the dict, and skips NamedTuple's slower __new__.
        # The readable versions are ``SlidingWindow.slice_for``, ``windows.bump``,
        # ``paths.template_path`` and ``QuantileSketch.add``; tests pin them equal.
        key: EdgeKey = (call[1].id, call[2].id, call[3])  # type: ignore[assignment]
        t = call[0]
        edge = edges.get(key)
        if edge is None:
            edge = self._new_edge(call, key)
        if t > edge.last_seen:
            edge.last_seen = t
        edge.samples[edge.total_requests % SAMPLES] = call
        edge.total_requests += 1
        window = edge.window
        part = window.current
        if part is None or t >= part.end:
            part = window.slice_for(t)
        part.requests += 1
        status = call[7]
        if status >= 500:
            part.errors_5xx += 1
        elif status >= 400:
            part.errors_4xx += 1
        part.bytes_sent += call[8]
        part.bytes_received += call[9]
        latency = part.latency
        latency.count += 1
        ms = call[10]
        if ms > MIN_VALUE:
            bucket = ceil(log(ms) * latency.inv_log_gamma)
            buckets = latency.buckets
            buckets[bucket] = buckets.get(bucket, 0) + 1
            if len(buckets) > latency.max_buckets:
                latency.collapse()
        else:
            latency.zero += 1
        if call[4] is _HTTP:
            raw = call[6]
            template = templates.get(raw)
            if template is None:
                template = self._template_for(raw)
            paths = part.paths
            if template in paths:
                paths[template] += 1
            else:
                bump(paths, template, window.max_paths)
            method = call[5]
            methods = part.methods
            if method in methods:
                methods[method] += 1
            else:
                bump(methods, method, window.max_methods)
        return edge

    def _template_for(self, raw: str) -> str:
        """A path's template, kept in a cache bounded in entries and in bytes, whatever
        paths arrive (the miss path of both recorders)."""
        templates = self._template_cache
        template = self._template(raw)
        self._template_chars += len(raw)
        if len(templates) >= _MAX_TEMPLATES or self._template_chars > _MAX_TEMPLATE_CHARS:
            templates.clear()
            self._template_chars = len(raw)
        templates[raw] = template
        return template

    def record_all(self, calls: Iterable[Call]) -> list[tuple[Edge, Call]]:
        """Record many calls; returns the edges they created with each one's first call
        (usually none: this is what makes the novel-edge check free per call). The native
        recorder does exactly this when it is built and ``limits.native`` allows it."""
        if self._native is not None:
            made: list[tuple[Edge, Call]] = self._native.record_all(self, calls)
            return made
        record = self._record
        edges = self.edges
        templates = self._template_cache
        before = len(edges)
        created: list[tuple[Edge, Call]] = []
        for call in calls:
            edge = record(call, edges, templates)
            if len(edges) != before:
                before = len(edges)
                created.append((edge, call))
        return created

    def _new_edge(self, call: Call, key: EdgeKey) -> Edge:
        # Newer metadata (labels after a rollout) replaces older for the same stable identity.
        self.nodes[call.source.id] = call.source
        self.nodes[call.destination.id] = call.destination
        edge_key = EdgeKey._make(key)  # the stored key is an EdgeKey; plain tuples find it
        edge = Edge(edge_key, call.protocol, call.time, self.limits)
        self.edges[edge_key] = edge
        return edge

    def merge_node(self, old_id: str, node: Workload) -> int:
        """Re-key every edge of ``old_id`` onto ``node`` (merging statistics); returns edges moved.

        Used when an actor first known by its certificate alone turns out to be a known app.
        """
        moved = 0
        self._forget_edges()
        for key in [k for k in self.edges if old_id in (k.source, k.destination)]:
            edge = self.edges.pop(key)
            new_key = EdgeKey(
                node.id if key.source == old_id else key.source,
                node.id if key.destination == old_id else key.destination,
                key.port,
            )
            edge.key = new_key
            existing = self.edges.get(new_key)
            if existing is not None:
                existing.absorb(edge)
            else:
                self.edges[new_key] = edge
            moved += 1
        self.nodes.pop(old_id, None)
        if moved:
            self.nodes[node.id] = node
        return moved

    def expire(self, now: float) -> tuple[int, int]:
        """Drop edges idle for longer than the TTL, then nodes left without edges."""
        horizon = now - self.limits.edge_ttl
        stale = [k for k, e in self.edges.items() if e.last_seen < horizon]
        for k in stale:
            del self.edges[k]
        if stale:
            self._forget_edges()
        live = {k[0] for k in self.edges} | {k[1] for k in self.edges}
        orphans = [n for n in self.nodes if n not in live]
        for n in orphans:
            del self.nodes[n]
        return len(stale), len(orphans)

    def snapshot(self, now: float) -> tuple[list[Workload], list[EdgeView]]:
        """Nodes and edges with their window statistics as of ``now``."""
        views = [
            EdgeView(
                e.key,
                e.protocol,
                e.first_seen,
                e.last_seen,
                e.total_requests,
                e.window.stats(now),
                tuple(c for c in e.samples if c is not None),
            )
            for e in self.edges.values()
        ]
        return list(self.nodes.values()), views


def _native_recorder() -> ModuleType | None:
    try:
        from meshwatch.graph import _recording as native
    except ImportError:  # not built here: the Python recorder serves
        return None
    native.bind(
        Edge,
        SlidingWindow,
        Slice,
        QuantileSketch,
        Workload,
        _HTTP,
        bump,
        SAMPLES,
        MIN_VALUE,
        len(Call._fields),
    )
    return native


_recording = _native_recorder()
