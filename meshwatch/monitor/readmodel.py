"""The read model: every document the API serves and every figure metrics read, typed.

Field names here are a public contract (dashboards, the Grafana node graph, scripts): add
fields, never rename one. The API adapter only serialises what this module returns, and the
metrics collector reads ``DetectionStatus`` attributes, not string keys of a dict.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from meshwatch.calls import EdgeKey, Workload
from meshwatch.detection.anomalies import Anomaly, AnomalyKind
from meshwatch.features.describing import iso
from meshwatch.graph.mesh_graph import EdgeView
from meshwatch.monitor.core import Monitor

MAX_LIMIT = 1000
_DIGITS = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


class NodeDoc(TypedDict):
    id: str
    namespace: str
    workload: str
    app: str
    version: str
    principal: str
    cluster_id: str
    labels: dict[str, str]
    external: bool
    provider: str


class EdgePolicyDoc(TypedDict):
    """The managed policy that denies (part of) an edge."""

    name: str
    namespace: str
    state: str


class EdgeDoc(TypedDict):
    source: str
    target: str
    port: int
    protocol: str
    requests: int
    errors_5xx: int
    errors_4xx: int
    bytes_sent: int
    bytes_received: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    paths: dict[str, int]
    methods: dict[str, int]
    first_seen: str
    last_seen: str
    requests_total: int
    status: str
    anomaly_score: float | None
    policy: EdgePolicyDoc | None


class GraphDoc(TypedDict):
    window_seconds: float
    nodes: list[NodeDoc]
    edges: list[EdgeDoc]


class DeviationDoc(TypedDict):
    feature: str
    value: float
    baseline_median: float
    baseline_p99: float
    z: float
    learned_low: float
    learned_high: float
    out_of_range: bool
    text: str


class SampleDoc(TypedDict):
    time: float
    method: str
    path: str
    status: int


class AnomalyDoc(TypedDict):
    id: str
    kind: str
    source: str
    target: str
    port: int
    score: float | None
    threshold: float | None
    first_seen: float
    last_seen: float
    first_seen_time: str
    last_seen_time: str
    security: bool
    windows: int
    reason: str
    deviations: list[DeviationDoc]
    samples: list[SampleDoc]


class AnomaliesDoc(TypedDict):
    anomalies: list[AnomalyDoc]
    count: int


class LearningDoc(TypedDict):
    calls: int
    edges: int
    windows: int
    started: float | None


class BaselineDoc(TypedDict):
    mode: str
    target_mode: str
    learning: LearningDoc
    known_edges: int
    model: dict[str, Any] | None
    last_promotion_error: str | None


@dataclass(slots=True)
class DetectionStatus:
    """What metrics report about detection."""

    mode: str
    anomalies: dict[str, int]
    open_anomalies: dict[str, int]
    threshold: float | None
    scoring_seconds: float
    scored_windows: int
    promotion_failures: int


def node_doc(node: Workload) -> NodeDoc:
    return {
        "id": node.id,
        "namespace": node.namespace,
        "workload": node.workload,
        "app": node.app,
        "version": node.version,
        "principal": node.principal,
        "cluster_id": node.cluster_id,
        "labels": node.label_dict,
        "external": node.external,
        "provider": node.provider,
    }


def _ranked(counter: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def edge_doc(
    edge: EdgeView, status: str, score: float | None, policy: EdgePolicyDoc | None = None
) -> EdgeDoc:
    stats = edge.stats
    return {
        "source": edge.key.source,
        "target": edge.key.destination,
        "port": edge.key.port,
        "protocol": edge.protocol.value,
        "requests": stats.requests,
        "errors_5xx": stats.errors_5xx,
        "errors_4xx": stats.errors_4xx,
        "bytes_sent": stats.bytes_sent,
        "bytes_received": stats.bytes_received,
        "latency_p50_ms": stats.latency_ms(0.5),
        "latency_p99_ms": stats.latency_ms(0.99),
        "paths": _ranked(stats.paths),
        "methods": _ranked(stats.methods),
        "first_seen": iso(edge.first_seen),
        "last_seen": iso(edge.last_seen),
        "requests_total": edge.total_requests,
        "status": status,
        "anomaly_score": None if score is None else round(score, 4),
        "policy": policy,
    }


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(x, 4)


def anomaly_doc(a: Anomaly) -> AnomalyDoc:
    """An anomaly as the API, the alert log and reports show it."""
    return {
        "id": a.id,
        "kind": a.kind.value,
        "source": a.source,
        "target": a.target,
        "port": a.port,
        "score": _finite(a.score),
        "threshold": _finite(a.threshold),
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
        "first_seen_time": iso(a.first_seen),
        "last_seen_time": iso(a.last_seen),
        "security": a.kind.security,
        "windows": a.windows,
        "reason": a.reason,
        "deviations": [
            {
                "feature": d.feature,
                "value": round(d.value, 4),
                "baseline_median": round(d.baseline_median, 4),
                "baseline_p99": round(d.baseline_p99, 4),
                "z": round(d.z, 2),
                "learned_low": round(d.learned_low, 4),
                "learned_high": round(d.learned_high, 4),
                "out_of_range": d.out_of_range,
                "text": d.text,
            }
            for d in a.deviations
        ],
        "samples": [
            {"time": s.time, "method": s.method, "path": s.path, "status": s.status}
            for s in a.samples
        ],
    }


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_ALL = frozenset({"", "*", ".*", "$__all", "All", "all"})


def parse_namespaces(raw: str) -> frozenset[str]:
    """A namespace filter: one name, or several joined by ``|`` or ``,`` (Grafana's
    ``${namespace:pipe}``, optionally in parentheses); empty, ``*``, ``.*`` and ``$__all``
    mean every namespace (the empty set). ``ValueError`` on anything else."""
    raw = raw.strip()
    if raw in _ALL:
        return frozenset()
    parts = [p.strip() for p in re.split(r"[|,]", raw.removeprefix("(").removesuffix(")"))]
    if any(p in _ALL for p in parts):
        return frozenset()
    for p in parts:
        if not _NAMESPACE.fullmatch(p):
            raise ValueError(f"namespace {p[:64]!r} is not a Kubernetes namespace name")
    return frozenset(parts)


def _namespace_of(node_id: str) -> str:
    return node_id.split("/", 1)[0] if "/" in node_id else ""


@dataclass(frozen=True, slots=True)
class AnomalyQuery:
    """Filters of ``/api/v1/anomalies``, validated strictly (``ValueError`` with a plain
    message): ASCII digits only, no NaN, no ``1_0``, no other scripts' digits."""

    kind: str | None = None
    source: str | None = None
    target: str | None = None
    namespaces: frozenset[str] = frozenset()
    since: float = 0.0
    limit: int = 100
    open_only: bool = False

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> AnomalyQuery:
        kind = query.get("kind")
        if kind is not None and kind not in {k.value for k in AnomalyKind}:
            raise ValueError(f"kind must be one of: {', '.join(k.value for k in AnomalyKind)}")
        limit_text = query.get("limit", "100")
        if not _DIGITS.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        state = query.get("state", "any")
        if state not in ("any", "open"):
            raise ValueError("state must be open or any")
        since_text = query.get("since", "0")
        if not _NUMBER.fullmatch(since_text):
            raise ValueError("since must be epoch seconds, for example 1767225600 or 1767225600.5")
        return cls(
            kind=kind,
            source=query.get("source"),
            target=query.get("target"),
            namespaces=parse_namespaces(query.get("namespace", "")),
            since=float(since_text),
            limit=int(limit_text),
            open_only=state == "open",
        )

    def matches(self, a: Anomaly) -> bool:
        if a.last_seen < self.since or (self.kind and a.kind.value != self.kind):
            return False
        if (self.source and a.source != self.source) or (self.target and a.target != self.target):
            return False
        names = self.namespaces
        return not names or bool({_namespace_of(a.source), _namespace_of(a.target)} & names)


@dataclass
class ServiceFigures:
    """What the runtime around the core measures (the core itself has no clock)."""

    scoring_seconds: float = 0.0
    scored_windows: int = 0
    promotion_failures: int = 0
    last_promotion_error: str | None = None
    last_window_end: float | None = None


class ReadModel:
    """Documents over one monitor core. Read on the event loop that owns the core."""

    def __init__(self, monitor: Monitor, figures: ServiceFigures) -> None:
        self.monitor = monitor
        self.figures = figures
        self.edge_policy: Callable[[EdgeKey], EdgePolicyDoc | None] = lambda _edge: None
        """Set by runtime defence: which managed policy covers an edge."""

    def graph(self, now: float) -> GraphDoc:
        """The ``/api/v1/graph`` document as of ``now``."""
        nodes, edges = self.monitor.graph.snapshot(now)
        status = self.monitor.edge_status
        edge_docs = []
        for e in edges:
            state, score = status(e.key)
            edge_docs.append(edge_doc(e, state, score, self.edge_policy(e.key)))
        return {
            "window_seconds": self.monitor.window.window,
            "nodes": sorted((node_doc(n) for n in nodes), key=lambda d: d["id"]),
            "edges": sorted(edge_docs, key=lambda d: (d["source"], d["target"], d["port"])),
        }

    def anomalies(self, query: AnomalyQuery) -> AnomaliesDoc:
        """Anomalies newest first, filtered."""
        out: list[AnomalyDoc] = []
        engine = self.monitor.engine
        open_ids = {a.id for a, _ in engine.open.values()} if query.open_only else set()
        for a in engine.anomalies:
            if not query.matches(a) or (query.open_only and a.id not in open_ids):
                continue
            out.append(anomaly_doc(a))
            if len(out) >= query.limit:
                break
        return {"anomalies": out, "count": len(out)}

    def baseline(self) -> BaselineDoc:
        engine = self.monitor.engine
        bundle = engine.bundle
        return {
            "mode": engine.mode.value,
            "target_mode": engine.target_mode.value,
            "learning": {
                "calls": engine.learning.calls,
                "edges": len(engine.learning.edges),
                "windows": sum(engine.learning.seen.values()),
                "started": engine.learning.started,
            },
            "known_edges": len(bundle.baseline.known_edges) if bundle else 0,
            "model": bundle.card.to_doc() if bundle else None,
            "last_promotion_error": self.figures.last_promotion_error,
        }

    def detection_status(self) -> DetectionStatus:
        engine = self.monitor.engine
        return DetectionStatus(
            mode=engine.mode.value,
            anomalies=dict(engine.counts),
            open_anomalies=dict(Counter(a.kind.value for a, _ in engine.open.values())),
            threshold=engine.bundle.threshold.value if engine.bundle else None,
            scoring_seconds=self.figures.scoring_seconds,
            scored_windows=self.figures.scored_windows,
            promotion_failures=self.figures.promotion_failures,
        )
