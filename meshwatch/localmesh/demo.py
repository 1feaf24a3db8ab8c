"""``meshwatch demo``: meshwatch plus a local Bookinfo mesh of real Envoys with steady traffic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from meshwatch.detection.engine import Mode
from meshwatch.localmesh.launcher import LocalMesh, free_port
from meshwatch.localmesh.topology import BOOKINFO
from meshwatch.runtime.serving import Service, build_service, run_service
from meshwatch.settings import HostPort, Settings

DEMO_DEFAULTS = {"window": "2", "mode": "observe", "learn_for": "40s"}
"""The demo learns briefly on short windows, then observes: it shows the whole loop in a
minute. Any explicit setting (flag, environment, file) still wins."""
DEMO_RATE = 20.0

PATHS = (
    "/productpage",
    "/productpage?u=normal",
    "/api/v1/products/1",
    "/api/v1/products/2/reviews",
)


async def demo_traffic(mesh: LocalMesh, rate: float, stop: asyncio.Event) -> None:
    """The demo's normal traffic into the mesh, until ``stop``."""
    i = 0
    while not stop.is_set():
        i += 1
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await mesh.request("istio-ingressgateway", "productpage:9080", PATHS[i % len(PATHS)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate)


async def _attack_after_learning(
    service: Service, mesh: LocalMesh, say: Callable[[str], None]
) -> None:
    """Once meshwatch observes, act like a compromised productpage and report what it sees."""
    engine = service.monitor.engine
    while engine.mode is not Mode.OBSERVE:  # noqa: ASYNC110 (polls another component's state)
        await asyncio.sleep(0.5)
    card = engine.bundle.card if engine.bundle else None
    if card is not None:
        say(f"learned {card.edge_count} edges; now observing (threshold {card.threshold:.3f})")
    await asyncio.sleep(3)
    say(
        "attack: productpage calls ratings directly (lateral movement); the ingress probes admin paths"
    )
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await mesh.request("productpage-v1", "ratings:9080", "/ratings/0?dump=all")
    for _ in range(6):
        for path in (
            "/admin",
            "/.env",
            "/actuator/env",
            "/api/v1/users/1",
            "/debug/pprof",
            "/backup.sql",
        ):
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await mesh.request("istio-ingressgateway", "productpage:9080", path, status=404)
    seen: set[str] = set()
    while True:
        for anomaly in reversed(list(engine.anomalies)):
            if anomaly.id not in seen:
                seen.add(anomaly.id)
                say(
                    f"ANOMALY {anomaly.kind.value}: {anomaly.source} -> {anomaly.target}:{anomaly.port}: {anomaly.reason}"
                )
        await asyncio.sleep(0.5)


async def run_demo(
    settings: Settings, duration: float, rate: float, say: Callable[[str], None]
) -> None:
    """Run until Ctrl-C (or ``duration`` seconds)."""
    if settings.als_listen.port == Settings().als_listen.port:
        settings = replace(settings, als_listen=HostPort("127.0.0.1", free_port()))
    # The demo prints each anomaly itself, once and readably; the one-JSON-line-per-anomaly
    # log that pipelines parse would print every anomaly a second time on the console.
    logging.getLogger("meshwatch.anomalies").setLevel(logging.ERROR)
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
                say(f"  anomalies:   {http}/api/v1/anomalies")
                say(
                    f"  learning normal traffic for {settings.learn_for:g}s on {settings.window:g}s windows; Ctrl-C to stop."
                )
                traffic = tasks.create_task(demo_traffic(mesh, rate, service.stop))
                attack = tasks.create_task(_attack_after_learning(service, mesh, say))
                if duration > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(service.stop.wait(), duration)
                else:
                    await service.stop.wait()
                service.stop.set()
                await traffic
                attack.cancel()
                doc = service.read_model.graph(time.time())
                say(f"graph: {len(doc['nodes'])} nodes, {len(doc['edges'])} edges")
                for edge in doc["edges"]:
                    say(
                        f"  {edge['source']} -> {edge['target']}:{edge['port']} "
                        f"{edge['protocol']} requests={edge['requests']} status={edge['status']}"
                    )
        await serving
