"""Choosing what a baseline learns: review the edges of recorded calls, leave out edges and
time ranges, and merge callers first seen by certificate alone into the app they are.

A capture of a real mesh holds whatever happened while it ran, attacks included. Whatever is
in it becomes "known", so an edge learned by mistake is never flagged again. ``review`` lists
each edge with the evidence behind it; ``Selection`` leaves out what should not be learned.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from meshwatch.calls import Call, EdgeKey, WindowSpec, Workload


@dataclass(frozen=True, slots=True)
class EdgePattern:
    """``SOURCE->DESTINATION[:PORT]``, each side a node id or a glob (``default/*``); the
    port is a number or ``*`` (any, as when it is left out)."""

    source: str
    destination: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> EdgePattern:
        source, arrow, rest = text.partition("->")
        if not arrow or not source.strip() or not rest.strip():
            raise ValueError(f"an edge is SOURCE->DESTINATION[:PORT], not {text!r}")
        destination, colon, port = rest.strip().rpartition(":")
        if colon and port.isdigit():
            return cls(source.strip(), destination, int(port))
        if colon and port == "*":
            return cls(source.strip(), destination)
        return cls(source.strip(), rest.strip())

    def matches(self, edge: EdgeKey) -> bool:
        return (
            fnmatch.fnmatchcase(edge.source, self.source)
            and fnmatch.fnmatchcase(edge.destination, self.destination)
            and (self.port is None or self.port == edge.port)
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """What to learn from: a time range, minus excluded edges."""

    exclude: tuple[EdgePattern, ...] = ()
    since: float | None = None
    until: float | None = None

    def keeps(self, call: Call) -> bool:
        if self.since is not None and call.time < self.since:
            return False
        if self.until is not None and call.time >= self.until:
            return False
        return not any(p.matches(call.edge) for p in self.exclude)

    def apply(self, calls: Iterable[Call]) -> Iterator[Call]:
        return (c for c in calls if self.keeps(c))


def merge_aliases(calls: Sequence[Call]) -> list[Call]:
    """Callers first seen by certificate alone (``<ns>/sa:<sa>``) rewritten to the app that
    principal turned out to be, when exactly one app carries it: the live service merges these
    nodes as soon as the app's sidecar speaks; a replay must not learn them as phantoms."""
    apps: dict[str, set[Workload]] = {}
    for c in calls:
        for w in (c.source, c.destination):
            if w.principal and w.app and "/sa:" not in w.id:
                apps.setdefault(w.principal, set()).add(w)
    by_principal = {p: next(iter(ws)) for p, ws in apps.items() if len({w.id for w in ws}) == 1}

    def resolved(w: Workload) -> Workload:
        if "/sa:" in w.id and w.principal in by_principal:
            return by_principal[w.principal]
        return w

    out = []
    for c in calls:
        source, destination = resolved(c.source), resolved(c.destination)
        if source is not c.source or destination is not c.destination:
            c = c._replace(source=source, destination=destination)
        out.append(c)
    return out


@dataclass
class EdgeReview:
    """The evidence behind one edge a baseline would learn."""

    edge: EdgeKey
    calls: int = 0
    first_seen: float = math.inf
    last_seen: float = -math.inf
    window_ids: set[int] = field(default_factory=set)
    identity: str = "peer metadata"

    @property
    def windows(self) -> int:
        return len(self.window_ids)


def identity_quality(w: Workload) -> str:
    """How well an end is known: ``peer metadata`` (app, workload), ``principal only``
    (certificate, no app yet), ``external`` or ``unknown``."""
    if w.external:
        return "external"
    if w.id == "unknown":
        return "unknown"
    if "/sa:" in w.id or w.id.startswith("principal/"):
        return "principal only"
    return "peer metadata"


def review(calls: Iterable[Call], window: WindowSpec) -> list[EdgeReview]:
    """Every edge of ``calls`` with its calls, windows with traffic, span and identity."""
    edges: dict[EdgeKey, EdgeReview] = {}
    for c in calls:
        r = edges.get(c.edge)
        if r is None:
            r = edges[c.edge] = EdgeReview(c.edge)
            worst = sorted((identity_quality(c.source), identity_quality(c.destination)))
            r.identity = next((q for q in worst if q in ("unknown", "principal only")), worst[0])
        r.calls += 1
        r.first_seen = min(r.first_seen, c.time)
        r.last_seen = max(r.last_seen, c.time)
        r.window_ids.add(math.floor(c.time / window.window))
    return sorted(edges.values(), key=lambda r: (r.edge.source, r.edge.destination, r.edge.port))


@dataclass(frozen=True, slots=True)
class Evidence:
    """Whether recorded calls hold enough to learn from, and what to do if not."""

    span_seconds: float
    edges: int
    thin: tuple[EdgeKey, ...]  # edges with fewer windows than the minimum
    min_windows: int
    suggested_window: float | None  # a window that would give every edge the minimum

    def lines(self, window: WindowSpec) -> list[str]:
        out = [
            f"data: {self.span_seconds / 3600:.2f} h over {self.edges} edges, "
            f"{self.span_seconds / window.window:,.0f} windows of {window.window:g} s"
        ]
        if self.thin:
            out.append(
                f"thin baseline: {len(self.thin)} edge(s) have fewer than {self.min_windows} "
                f"windows with traffic and will stay warming up: "
                + ", ".join(str(e) for e in self.thin[:5])
                + (" ..." if len(self.thin) > 5 else "")
            )
            if self.suggested_window is not None:
                out.append(
                    f"a {self.suggested_window:g} s window would give them enough windows "
                    f"(--window {self.suggested_window:g}, the same for serve); or capture longer"
                )
        return out


def evidence(reviews: Sequence[EdgeReview], window: WindowSpec, min_windows: int) -> Evidence:
    """The span of the data, and the edges too thin to judge statistically."""
    if not reviews:
        return Evidence(0.0, 0, (), min_windows, None)
    start = min(r.first_seen for r in reviews)
    end = max(r.last_seen for r in reviews)
    thin = tuple(r.edge for r in reviews if r.windows < min_windows)
    suggestion = None
    if thin and end > start:
        candidate = math.floor((end - start) / (min_windows * 2))
        if 1 <= candidate < window.window:
            suggestion = float(candidate)
    return Evidence(end - start, len(reviews), thin, min_windows, suggestion)
