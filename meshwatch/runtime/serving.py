"""``meshwatch serve``: the gRPC receiver, the pipeline and the HTTP API in one TaskGroup.

SIGTERM/SIGINT set a stop event; the gRPC server then gets ``grace_seconds`` to finish open
streams, the HTTP runner is cleaned up and the capture file is closed (so no buffered call
is lost on a clean shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meshwatch.adapters.als.server import AlsReceiver, start_server
from meshwatch.adapters.api.app import make_app
from meshwatch.adapters.api.context import ApiConfig
from meshwatch.adapters.api.logs import quiet_bad_requests
from meshwatch.adapters.files.capture import CaptureMeta, CaptureWriter
from meshwatch.adapters.metrics.collectors import CONTENT_TYPE, Sources, exposition, make_registry
from meshwatch.calls import EdgeKey
from meshwatch.counters import IngestCounters
from meshwatch.decoding import wire
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.readmodel import EdgePolicyDoc, ReadModel
from meshwatch.policy.controlling import Defence
from meshwatch.policy.objects import load_schema
from meshwatch.runtime.defending import DefenceService, build_sink, defence_params
from meshwatch.runtime.monitoring import MonitorService, build_monitor
from meshwatch.runtime.pipeline import Pipeline
from meshwatch.settings import Settings

log = logging.getLogger(__name__)


@functools.cache
def freeze_startup_heap() -> None:
    """Move everything alive at start-up (modules, scikit-learn, the model) out of the cyclic
    collector's sight, once per process.

    Why: ingest allocates steadily, so the collector's full passes keep coming, and each one
    walked the ~400k objects of the imports for about 120 ms: a pause in ingest, and about 4 %
    of its rate at 700k entries/s. Frozen objects are still freed by reference counting; only
    cycles among them are never collected, which start-up state does not make.
    """
    gc.collect()
    gc.freeze()


@dataclass
class Service:
    """A running meshwatch: what tests and the demo need to reach it."""

    settings: Settings
    monitoring: MonitorService
    defending: DefenceService
    counters: IngestCounters
    read_model: ReadModel
    als_port: int = 0
    http_port: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Callable[[], bytes] = field(default=lambda: b"")

    @property
    def monitor(self) -> Monitor:
        return self.monitoring.monitor

    async def promote(self) -> dict[str, Any]:
        """Promote now (``ModelError`` with the reason when there is too little data)."""
        bundle = await self.monitoring.promote()
        return {"mode": "observe", "model": bundle.card.to_doc()}

    async def approve(self, source: str, target: str, port: int | None) -> dict[str, Any]:
        """Accept an edge: detection forgets its anomaly, defence lifts its deny."""
        ended = await self.monitoring.approve(source, target, port)
        lifted = self.defending.approve(source, target, port)
        await self.defending.reconcile()
        return {
            "approved": {"source": source, "target": target, "port": port},
            "anomalies_ended": ended,
            "edges_lifted": [e.text for e in lifted],
        }

    async def revoke(self, name: str | None, namespace: str | None) -> dict[str, Any]:
        revoked = self.defending.revoke(name, namespace)
        await self.defending.reconcile()
        return {"revoked": revoked}


class _Control:
    """The service as the API sees it (``adapters.api.app.Control``)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def ready(self) -> bool:
        return self._service.ready.is_set()

    def metrics(self) -> bytes:
        return self._service.metrics()

    async def promote(self) -> Mapping[str, Any]:
        return await self._service.promote()

    def policies(self) -> Mapping[str, Any]:
        return self._service.defending.document()

    async def approve(self, source: str, target: str, port: int | None) -> Mapping[str, Any]:
        return await self._service.approve(source, target, port)

    async def revoke(self, name: str | None, namespace: str | None) -> Mapping[str, Any]:
        return await self._service.revoke(name, namespace)


def build_service(settings: Settings) -> Service:
    """The core objects, before anything listens (``ModelError`` for an unusable model)."""
    monitoring = MonitorService(build_monitor(settings), settings)
    if settings.defence != "off":
        # Istio's generated schema takes about a second to import. Paid here, before anything
        # listens, rather than at the first anomaly, where it would hold the GIL while
        # entries queue up.
        load_schema()
    defending = DefenceService(
        Defence(defence_params(settings)), build_sink(settings), monitoring.monitor
    )
    monitoring.subscribers.append(defending.publish)
    service = Service(
        settings=settings,
        monitoring=monitoring,
        defending=defending,
        counters=IngestCounters(),
        read_model=ReadModel(monitoring.monitor, monitoring.figures),
    )

    def edge_policy(edge: EdgeKey) -> EdgePolicyDoc | None:
        status = defending.policy_of(edge)
        if status is None:
            return None
        return {"name": status.name, "namespace": status.namespace, "state": status.state}

    service.read_model.edge_policy = edge_policy
    registry = make_registry(
        Sources(
            service.counters,
            lambda: service.monitor.graph,
            settings.queue_max_messages,
            service.read_model.detection_status,
            defending.snapshot,
        )
    )
    service.metrics = lambda: exposition(registry)
    return service


async def run_service(service: Service, on_ready: Callable[[Service], None] | None = None) -> None:
    """Run until ``service.stop`` is set (or a signal arrives). Raises ``OSError`` on bind failure."""
    settings = service.settings
    decoder_name, parse = wire.choose(settings.ingest_decoder)
    log.info("ALS wire decoder: %s (ingest_decoder=%s)", decoder_name, settings.ingest_decoder)
    receiver = AlsReceiver(
        service.counters, settings.queue_max_messages, settings.als_verify_peer, parse
    )
    capture = (
        CaptureWriter(
            settings.capture_dir,
            settings.capture_rotate_seconds,
            settings.capture_rotate_rows,
            CaptureMeta(settings.window, settings.window_slices, settings.trust_domain),
        )
        if settings.capture_dir is not None
        else None
    )
    pipeline = Pipeline(receiver, service.monitoring, service.counters, capture)
    app = make_app(
        service.read_model,
        _Control(service),
        ApiConfig(api_token=settings.api_token, metrics_content_type=CONTENT_TYPE),
    )
    quiet_bad_requests()
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
        freeze_startup_heap()
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
            detecting = tasks.create_task(service.monitoring.run())
            defending = tasks.create_task(service.defending.run())
            await service.stop.wait()
            service.ready.clear()
            await server.stop(settings.grace_seconds)
            # let the pipeline drain what the receiver already accepted
            await receiver.queue.join()
            ingest.cancel()
            housekeeping.cancel()
            detecting.cancel()
            defending.cancel()
    finally:
        if service.defending.sink is not None:
            service.defending.sink.close()
        await server.stop(0)
        await pipeline.flush_capture(closing=True)
        await service.monitoring.checkpoint()
        await runner.cleanup()
        log.info("meshwatch stopped")
