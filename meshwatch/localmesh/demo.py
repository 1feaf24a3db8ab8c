"""``meshwatch demo``: meshwatch plus a local Bookinfo mesh of real Envoys with steady traffic."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from meshwatch.localmesh.launcher import LocalMesh, free_port
from meshwatch.localmesh.topology import BOOKINFO
from meshwatch.runtime.serving import Service, build_service, run_service
from meshwatch.settings import HostPort, Settings

PATHS = (
    "/productpage",
    "/productpage?u=normal",
    "/api/v1/products/1",
    "/api/v1/products/2/reviews",
)


async def _traffic(mesh: LocalMesh, rate: float, stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await mesh.request("istio-ingressgateway", "productpage:9080", PATHS[i % len(PATHS)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate)


async def run_demo(
    settings: Settings, duration: float, rate: float, say: Callable[[str], None]
) -> None:
    """Run until Ctrl-C (or ``duration`` seconds)."""
    if settings.als_listen.port == Settings().als_listen.port:
        settings = replace(settings, als_listen=HostPort("127.0.0.1", free_port()))
    service = build_service(settings)
    ready = asyncio.Event()

    def on_ready(_: Service) -> None:
        ready.set()

    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(run_service(service, on_ready))
        await ready.wait()
        with tempfile.TemporaryDirectory(prefix="meshwatch-demo-") as tmp:
            async with LocalMesh(BOOKINFO, service.als_port, Path(tmp)) as mesh:
                http = f"http://{settings.http_listen.host}:{service.http_port}"
                say(
                    f"meshwatch demo: {len(mesh.sidecars)} Envoy sidecars (Bookinfo) streaming to ALS :{service.als_port}"
                )
                say(f"  live graph:  {http}/api/v1/graph")
                say(f"  metrics:     {http}/metrics")
                say("  Ctrl-C to stop.")
                traffic = tasks.create_task(_traffic(mesh, rate, service.stop))
                if duration > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(service.stop.wait(), duration)
                else:
                    await service.stop.wait()
                service.stop.set()
                await traffic
                doc = service.graph_document()
                say(f"graph: {len(doc['nodes'])} nodes, {len(doc['edges'])} edges")
                for edge in doc["edges"]:
                    say(
                        f"  {edge['source']} -> {edge['target']}:{edge['port']} "
                        f"{edge['protocol']} requests={edge['requests']} p99={edge['latency_p99_ms']}ms"
                    )
        await serving
