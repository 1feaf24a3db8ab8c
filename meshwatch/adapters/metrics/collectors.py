"""Prometheus metrics read at scrape time from the ingest counters and the live graph.

Nothing here runs per call: the hot path bumps plain integers and the graph keeps its own
totals; a scrape turns them into metric families. Per-edge series use Istio's label names
(``source_workload``, ``source_workload_namespace``, ``destination_workload``,
``destination_workload_namespace``, ``destination_service_name``, ``request_protocol``) so
they join with ``istio_requests_total`` in PromQL. Their cardinality is the number of live
edges, which the graph's TTL bounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from meshwatch.calls import Workload
from meshwatch.counters import DROP_REASONS, ENTRY_KINDS, IngestCounters
from meshwatch.detection.anomalies import AnomalyKind
from meshwatch.graph.mesh_graph import MeshGraph
from meshwatch.monitor.readmodel import DetectionStatus
from meshwatch.policy.planning import REFUSAL_REASONS
from meshwatch.policy.reporting import DefenceSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_EDGE_LABELS = [
    "source_workload",
    "source_workload_namespace",
    "source_app",
    "source_principal",
    "destination_workload",
    "destination_workload_namespace",
    "destination_app",
    "destination_service_name",
    "destination_port",
    "request_protocol",
]


def _edge_labels(source: Workload, destination: Workload, port: int, protocol: str) -> list[str]:
    return [
        source.workload,
        source.namespace,
        source.app,
        source.principal,
        destination.workload,
        destination.namespace,
        destination.app,
        destination.workload if destination.external else destination.app,
        str(port),
        protocol,
    ]


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the collectors read from."""

    counters: IngestCounters
    graph: Callable[[], MeshGraph]
    queue_capacity: int
    detection: Callable[[], DetectionStatus] | None = None
    defence: Callable[[], DefenceSnapshot] | None = None


def _labelled(
    name: str,
    doc: str,
    labels: list[str],
    counts: Mapping[Any, int],
    known: Iterable[Any] = (),
) -> CounterMetricFamily:
    """A counter family from a Counter keyed by one label value or a tuple of them; the
    ``known`` keys are exported from zero (so ``rate()`` has a series before the first one)."""
    family = CounterMetricFamily(name, doc, labels=labels)
    merged = dict.fromkeys(known, 0) | dict(counts)
    for key, n in sorted(merged.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return family


class IngestCollector(Collector):
    """Counters of the receiver and pipeline."""

    def __init__(self, sources: Sources) -> None:
        self._s = sources

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self._s.counters
        yield _labelled(
            "meshwatch_als_entries_received",
            "ALS log entries received.",
            ["kind"],
            c.entries_received,
            ENTRY_KINDS,
        )
        yield _labelled(
            "meshwatch_als_entries_dropped",
            "ALS log entries dropped (queue_full: the ingest queue was full; malformed: not decodable).",
            ["kind", "reason"],
            c.entries_dropped,
            itertools.product(ENTRY_KINDS, DROP_REASONS),
        )
        yield _labelled(
            "meshwatch_als_entries_duplicate",
            "Client-side entries skipped because the server-side sidecar logs the same call.",
            ["kind"],
            c.entries_duplicate,
        )
        yield _labelled(
            "meshwatch_als_entries_retimed",
            "Entries whose start time was implausible (too far ahead of or behind their receipt); "
            "placed at receive time.",
            ["kind"],
            c.entries_retimed,
        )
        yield _labelled(
            "meshwatch_als_fields_truncated",
            "Paths, authorities or SNI names cut to 2048 characters.",
            ["kind"],
            c.fields_truncated,
        )
        yield CounterMetricFamily(
            "meshwatch_als_entries_intermediate",
            "Periodic TCP entries (counted at close).",
            value=c.entries_intermediate,
        )
        yield CounterMetricFamily(
            "meshwatch_als_messages", "ALS messages received.", value=c.messages_received
        )
        yield CounterMetricFamily(
            "meshwatch_als_received_bytes", "ALS message bytes received.", value=c.bytes_received
        )
        yield _labelled(
            "meshwatch_als_decode_errors",
            "ALS messages that could not be decoded.",
            ["reason"],
            c.decode_errors,
        )
        yield _labelled(
            "meshwatch_als_stream_errors",
            "ALS streams closed by an error.",
            ["reason"],
            c.stream_errors,
        )
        yield CounterMetricFamily(
            "meshwatch_als_streams_opened", "ALS streams opened.", value=c.streams_opened
        )
        yield GaugeMetricFamily(
            "meshwatch_als_streams_open", "ALS streams open now.", value=c.streams_open
        )
        yield CounterMetricFamily(
            "meshwatch_als_stream_reconnects",
            "Streams re-opened by a sidecar seen before; entries flushed in between are lost by Envoy.",
            value=c.stream_reconnects,
        )
        yield CounterMetricFamily(
            "meshwatch_als_stream_gap_seconds",
            "Seconds between a stream's close and its sidecar's return.",
            value=c.stream_gap_seconds,
        )
        yield GaugeMetricFamily(
            "meshwatch_ingest_queue_depth", "Messages waiting to be decoded.", value=c.queue_depth
        )
        yield GaugeMetricFamily(
            "meshwatch_ingest_queue_capacity",
            "Messages the ingest queue holds before dropping.",
            value=self._s.queue_capacity,
        )
        yield CounterMetricFamily(
            "meshwatch_calls_recorded", "Calls recorded in the graph.", value=c.calls_recorded
        )
        yield CounterMetricFamily(
            "meshwatch_capture_rows_written",
            "Calls written to Parquet captures.",
            value=c.capture_rows_written,
        )
        yield CounterMetricFamily(
            "meshwatch_capture_errors", "Failed capture writes.", value=c.capture_errors
        )


class GraphCollector(Collector):
    """The size of the graph and per-edge request totals with Istio's label names."""

    def __init__(self, sources: Sources) -> None:
        self._s = sources

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        graph = self._s.graph()
        yield GaugeMetricFamily(
            "meshwatch_graph_nodes", "Nodes in the live graph.", value=len(graph.nodes)
        )
        yield GaugeMetricFamily(
            "meshwatch_graph_edges", "Edges in the live graph.", value=len(graph.edges)
        )
        requests = CounterMetricFamily(
            "meshwatch_edge_requests",
            "Calls seen on each live edge since it appeared.",
            labels=_EDGE_LABELS,
        )
        nodes = graph.nodes
        for (source_id, destination_id, port), edge in graph.edges.items():
            source = nodes.get(source_id)
            destination = nodes.get(destination_id)
            if source is None or destination is None:
                continue
            requests.add_metric(
                _edge_labels(source, destination, port, edge.protocol.value), edge.total_requests
            )
        yield requests


class DetectionCollector(Collector):
    """Anomaly counters (label ``kind`` only: bounded), mode and threshold."""

    def __init__(self, sources: Sources) -> None:
        self._s = sources

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self._s.detection is None:
            return
        state = self._s.detection()
        counts = CounterMetricFamily(
            "meshwatch_anomalies", "Anomalies raised, by kind.", labels=["kind"]
        )
        for kind in AnomalyKind:
            counts.add_metric([kind.value], state.anomalies.get(kind.value, 0))
        yield counts
        open_now = GaugeMetricFamily(
            "meshwatch_anomalies_open", "Anomalies open now, by kind.", labels=["kind"]
        )
        for kind in AnomalyKind:
            open_now.add_metric([kind.value], state.open_anomalies.get(kind.value, 0))
        yield open_now
        mode = GaugeMetricFamily(
            "meshwatch_detection_mode", "1 for the current detection mode.", labels=["mode"]
        )
        for name in ("learn", "observe"):
            mode.add_metric([name], 1.0 if state.mode == name else 0.0)
        yield mode
        if state.threshold is not None:
            yield GaugeMetricFamily(
                "meshwatch_detection_threshold",
                "Statistical alert threshold.",
                value=state.threshold,
            )
        yield GaugeMetricFamily(
            "meshwatch_detection_scoring_seconds",
            "Duration of the last window scoring.",
            value=state.scoring_seconds,
        )
        yield CounterMetricFamily(
            "meshwatch_detection_scored_windows",
            "Edge-windows scored.",
            value=state.scored_windows,
        )
        yield CounterMetricFamily(
            "meshwatch_detection_promotion_failures",
            "Promotions that were due but had too little to learn from (learning went on).",
            value=state.promotion_failures,
        )


POLICY_STATES = ("planned", "dry-run", "enforced")
POLICY_ACTIONS = ("create", "update", "delete", "error")


class DefenceCollector(Collector):
    """Managed policies by mode and state, sink actions and refusals (bounded labels)."""

    def __init__(self, sources: Sources) -> None:
        self._s = sources

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self._s.defence is None:
            return
        snap = self._s.defence()
        policies = GaugeMetricFamily(
            "meshwatch_policies",
            "Desired DENY policies now, by mode and state.",
            labels=["mode", "state"],
        )
        for state in POLICY_STATES:
            policies.add_metric([snap.mode, state], snap.policies.get(state, 0))
        yield policies
        actions = CounterMetricFamily(
            "meshwatch_policy_actions",
            "Writes to the policy sink (create, update, delete) and failed ones (error).",
            labels=["action"],
        )
        for action in POLICY_ACTIONS:
            actions.add_metric([action], snap.actions.get(action, 0))
        yield actions
        yield _labelled(
            "meshwatch_policy_refusals",
            "Threats defence would not or could not deny, by reason (counted once per threat and reason).",
            ["reason"],
            snap.refusals,
            REFUSAL_REASONS,
        )


def make_registry(sources: Sources) -> CollectorRegistry:
    """meshwatch's own registry with its collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngestCollector(sources))
    registry.register(GraphCollector(sources))
    registry.register(DetectionCollector(sources))
    registry.register(DefenceCollector(sources))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of a registry."""
    return generate_latest(registry)
