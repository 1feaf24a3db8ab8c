"""Per-edge sliding-window statistics, built from mergeable slices.

A window of length ``W`` is a ring of ``n`` slices of ``W/n`` seconds each. A call updates
only the slice its start time falls in; reading the window merges the live slices. Every
field is a count, a sum, a sketch or a bounded counter map, so slices (and whole windows
from several receivers) merge by addition. Memory per edge is ``n`` slices, each bounded by
the path and method caps, whatever the request rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meshwatch.graph.sketches import QuantileSketch

OTHER = "<other>"


class Slice:
    """Statistics of one edge over one slice of time."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "end",
        "errors_4xx",
        "errors_5xx",
        "index",
        "latency",
        "methods",
        "paths",
        "requests",
    )

    def __init__(self, index: int, end: float) -> None:
        self.index = index
        self.end = end  # first instant after this slice
        self.requests = 0
        self.errors_5xx = 0
        self.errors_4xx = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.latency = QuantileSketch()
        self.paths: dict[str, int] = {}
        self.methods: dict[str, int] = {}

    def absorb(self, other: Slice) -> None:
        """Add another slice of the same index into this one."""
        accumulate(self, other)


def accumulate(into: Slice | WindowStats, other: Slice | WindowStats) -> None:
    """Add one set of mergeable statistics to another (counts, sums, sketches, counters)."""
    into.requests += other.requests
    into.errors_5xx += other.errors_5xx
    into.errors_4xx += other.errors_4xx
    into.bytes_sent += other.bytes_sent
    into.bytes_received += other.bytes_received
    into.latency.merge(other.latency)
    _add_counts(into.paths, other.paths)
    _add_counts(into.methods, other.methods)


def _add_counts(into: dict[str, int], other: dict[str, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


def bump(counter: dict[str, int], key: str, cap: int) -> None:
    """Count ``key``; beyond ``cap`` distinct keys, count it as ``<other>``."""
    if key in counter:
        counter[key] += 1
    elif len(counter) < cap:
        counter[key] = 1
    else:
        counter[OTHER] = counter.get(OTHER, 0) + 1


@dataclass(slots=True)
class WindowStats:
    """An edge's statistics over a window: the merge of its live slices."""

    requests: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    latency: QuantileSketch = field(default_factory=QuantileSketch)
    paths: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)

    def add_slice(self, part: Slice) -> None:
        """Merge one slice in."""
        accumulate(self, part)

    def merge(self, other: WindowStats) -> None:
        """Merge another window (e.g. from another receiver replica) into this one."""
        accumulate(self, other)

    def latency_ms(self, q: float) -> float | None:
        """A latency quantile in ms, or ``None`` when the window is empty."""
        value = self.latency.quantile(q)
        return None if math.isnan(value) else round(value, 3)


class SlidingWindow:
    """The ring of slices of one edge."""

    __slots__ = (
        "current",
        "keep",
        "max_methods",
        "max_paths",
        "n_slices",
        "slice_seconds",
        "slices",
    )

    def __init__(
        self,
        slice_seconds: float,
        n_slices: int,
        max_paths: int,
        max_methods: int,
        extra_slices: int = 0,
    ) -> None:
        self.slice_seconds = slice_seconds
        self.n_slices = n_slices
        # Slices kept beyond the window: calls of the next window start arriving before the
        # window closes (it closes ``grace`` seconds late), and must not push its oldest out.
        self.keep = n_slices + extra_slices
        self.max_paths = max_paths
        self.max_methods = max_methods
        self.slices: list[Slice] = []
        self.current: Slice | None = None

    def slice_for(self, t: float) -> Slice:
        """The slice a call at time ``t`` is counted in (late calls count in the newest slice)."""
        index = int(t // self.slice_seconds)
        current = self.current
        if current is not None and index <= current.index:
            return current
        fresh = Slice(index, (index + 1) * self.slice_seconds)
        oldest = index - self.keep + 1
        self.slices = [s for s in self.slices if s.index >= oldest]
        self.slices.append(fresh)
        self.current = fresh
        return fresh

    def absorb(self, other: SlidingWindow) -> None:
        """Merge another ring slice by slice (slices of the same index add up)."""
        by_index = {s.index: s for s in self.slices}
        for part in other.slices:
            mine = by_index.get(part.index)
            if mine is None:
                self.slices.append(part)
                by_index[part.index] = part
            else:
                mine.absorb(part)
        self.slices.sort(key=lambda s: s.index)
        newest = self.slices[-1] if self.slices else None
        oldest = newest.index - self.n_slices + 1 if newest is not None else 0
        self.slices = [s for s in self.slices if s.index >= oldest]
        self.current = newest

    def live(self, now: float) -> list[Slice]:
        """The slices of the ``n_slices`` ending at ``now`` (the newest may be partial)."""
        oldest = math.ceil(now / self.slice_seconds) - self.n_slices
        return [p for p in self.slices if p.index >= oldest and p.index * self.slice_seconds < now]

    def traffic(self, now: float) -> tuple[int, int, QuantileSketch]:
        """Requests, 5xx and latency over the window ending at ``now``: what ``stats`` gives,
        without merging paths and methods (the views read thousands of edges per refresh).
        The sketch is the slice's own when one slice is live: read it, never change it."""
        live = self.live(now)
        if len(live) == 1:
            part = live[0]
            return part.requests, part.errors_5xx, part.latency
        latency = QuantileSketch()
        requests = errors = 0
        for part in live:
            requests += part.requests
            errors += part.errors_5xx
            latency.merge(part.latency)
        return requests, errors, latency

    def stats(self, now: float) -> WindowStats:
        """Merge the ``n_slices`` slices ending at ``now`` (the newest may be partial)."""
        out = WindowStats()
        for part in self.live(now):
            out.add_slice(part)
        return out
