"""The graph as JSON-ready documents. Field names here are a public contract: dashboards,
the Grafana node graph and later issues read them. Add fields; never rename one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from meshwatch.calls import Workload
from meshwatch.graph.mesh_graph import EdgeView


def iso(t: float) -> str:
    """Epoch seconds → RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def node_doc(node: Workload) -> dict[str, Any]:
    """A graph node."""
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


def _ranked(counter: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


EdgeStatus = Callable[[tuple[str, str, int]], tuple[str, float | None]]


def _normal(_: tuple[str, str, int]) -> tuple[str, float | None]:
    return ("normal", None)


def edge_doc(edge: EdgeView, status: EdgeStatus = _normal) -> dict[str, Any]:
    """A graph edge with its sliding-window statistics and detection status."""
    stats = edge.stats
    state, score = status((edge.key.source, edge.key.destination, edge.key.port))
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
        "status": state,
        "anomaly_score": None if score is None else round(score, 4),
    }


def graph_doc(
    nodes: list[Workload], edges: list[EdgeView], window: float, status: EdgeStatus = _normal
) -> dict[str, Any]:
    """The ``/api/v1/graph`` document."""
    return {
        "window_seconds": window,
        "nodes": sorted((node_doc(n) for n in nodes), key=lambda d: d["id"]),
        "edges": sorted(
            (edge_doc(e, status) for e in edges),
            key=lambda d: (d["source"], d["target"], d["port"]),
        ),
    }
