"""``meshwatch serve``: the gRPC receiver, the pipeline and the HTTP API in one TaskGroup.

SIGTERM/SIGINT set a stop event; the gRPC server then gets ``grace_seconds`` to finish open
streams, the HTTP runner is cleaned up and the capture file is closed (so no buffered call
is lost on a clean shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meshwatch.adapters.als.server import AlsReceiver, start_server
from meshwatch.adapters.api.app import ApiDeps, make_app
from meshwatch.adapters.files.capture import CaptureWriter
from meshwatch.adapters.metrics.collectors import CONTENT_TYPE, Sources, exposition, make_registry
from meshwatch.counters import IngestCounters
from meshwatch.errors import ModelError
from meshwatch.graph.mesh_graph import GraphLimits, MeshGraph
from meshwatch.graph.views import graph_doc
from meshwatch.identity.resolving import IdentityResolver
from meshwatch.runtime.detecting import Detection
from meshwatch.runtime.pipeline import Pipeline
from meshwatch.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Service:
    """A running meshwatch: what tests and the demo need to reach it."""

    settings: Settings
    graph: MeshGraph
    counters: IngestCounters
    detection: Detection
    als_port: int = 0
    http_port: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def graph_document(self) -> dict[str, Any]:
        """The current graph as the API serves it."""
        nodes, edges = self.graph.snapshot(time.time())
        return graph_doc(nodes, edges, self.settings.window, self.detection.engine.edge_status)

    def anomalies_document(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Anomalies newest first; filters kind, source, target, namespace, since, limit."""
        limit = min(int(query.get("limit", "100")), 1000)
        since = float(query.get("since", "0"))
        kind, source, target = query.get("kind"), query.get("source"), query.get("target")
        namespace = query.get("namespace")
        if kind is not None and kind not in ("new-edge", "statistical"):
            raise ValueError("kind must be new-edge or statistical")
        out = []
        for a in self.detection.engine.anomalies:
            if a.last_seen < since or (kind and a.kind.value != kind):
                continue
            if (source and a.source != source) or (target and a.target != target):
                continue
            if namespace and not (
                a.source.startswith(f"{namespace}/") or a.target.startswith(f"{namespace}/")
            ):
                continue
            out.append(a.to_doc())
            if len(out) >= limit:
                break
        return {"anomalies": out, "count": len(out)}

    def baseline_document(self) -> dict[str, Any]:
        engine = self.detection.engine
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
        }

    async def promote(self) -> dict[str, Any]:
        try:
            bundle = await self.detection.promote()
        except ModelError as exc:
            raise ValueError(str(exc)) from exc
        return {"mode": "observe", "model": bundle.card.to_doc()}

    def detection_state(self) -> dict[str, Any]:
        engine = self.detection.engine
        return {
            "mode": engine.mode.value,
            "anomalies": dict(engine.counts),
            "threshold": engine.bundle.threshold.value if engine.bundle else None,
            "scoring_seconds": self.detection.last_scoring_seconds,
            "scored_windows": self.detection.scored_windows,
        }


def build_service(settings: Settings) -> Service:
    """The core objects, before anything listens."""
    limits = GraphLimits(
        window=settings.window,
        slices=settings.window_slices,
        edge_ttl=settings.edge_ttl,
        max_paths=settings.max_paths_per_edge,
        max_methods=settings.max_methods_per_edge,
    )
    graph = MeshGraph(limits)
    return Service(
        settings=settings,
        graph=graph,
        counters=IngestCounters(),
        detection=Detection(settings, graph),
    )


async def run_service(service: Service, on_ready: Callable[[Service], None] | None = None) -> None:
    """Run until ``service.stop`` is set (or a signal arrives). Raises ``OSError`` on bind failure."""
    settings = service.settings
    resolver = IdentityResolver(settings.trust_domain, settings.cluster_domain)
    receiver = AlsReceiver(resolver, service.counters, settings.queue_max_messages)
    capture = (
        CaptureWriter(
            settings.capture_dir, settings.capture_rotate_seconds, settings.capture_rotate_rows
        )
        if settings.capture_dir is not None
        else None
    )
    pipeline = Pipeline(receiver, service.graph, service.counters, capture, service.detection)
    registry = make_registry(
        Sources(
            service.counters,
            lambda: service.graph,
            settings.queue_max_messages,
            service.detection_state,
        )
    )
    app = make_app(
        ApiDeps(
            graph=service.graph_document,
            metrics=lambda: exposition(registry),
            metrics_content_type=CONTENT_TYPE,
            ready=service.ready.is_set,
            api_token=settings.api_token,
            anomalies=service.anomalies_document,
            baseline=service.baseline_document,
            promote=service.promote,
        )
    )
    if not settings.http_listen.is_loopback and not settings.api_token:
        log.warning("HTTP API listens on %s without a bearer token", settings.http_listen)

    server, service.als_port = await start_server(
        receiver.stream_access_logs, settings.als_listen, settings.max_message_bytes
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.grace_seconds)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_listen.host, settings.http_listen.port)
        await site.start()
        sockets = runner.addresses
        service.http_port = int(sockets[0][1]) if sockets else settings.http_listen.port
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, service.stop.set)
        service.ready.set()
        log.info(
            "meshwatch serving: ALS gRPC on %s:%d, HTTP on %s:%d",
            settings.als_listen.host,
            service.als_port,
            settings.http_listen.host,
            service.http_port,
        )
        if on_ready is not None:
            on_ready(service)
        async with asyncio.TaskGroup() as tasks:
            ingest = tasks.create_task(pipeline.run())
            housekeeping = tasks.create_task(pipeline.housekeeping())
            detecting = tasks.create_task(service.detection.run())
            await service.stop.wait()
            service.ready.clear()
            await server.stop(settings.grace_seconds)
            # let the pipeline drain what the receiver already accepted
            await receiver.queue.join()
            ingest.cancel()
            housekeeping.cancel()
            detecting.cancel()
    finally:
        await server.stop(0)
        await pipeline.flush_capture(closing=True)
        await runner.cleanup()
        log.info("meshwatch stopped")
