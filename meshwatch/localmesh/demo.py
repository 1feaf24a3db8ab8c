"""``meshwatch demo``: meshwatch protecting a local Bookinfo mesh of real Envoys, end to end.

meshwatch learns the mesh, then two attacks play. Each anomaly is planned into an
AuthorizationPolicy, written through meshwatch's Kubernetes sink (the official client) to the
in-repo API emulator; a local control plane renders it into the sidecars' Envoy RBAC by
file-based LDS, the path istiod takes in a cluster. The demo prints each step as it happens
and, at the end, Envoy's own count of what it denied. ``--once`` stops once both attacks are
blocked (or after ``ONCE_LIMIT`` seconds of attack), for tests.
"""

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
from meshwatch.localmesh.control_plane import LocalControlPlane
from meshwatch.localmesh.demo_story import PRODUCTION_NOTE, Counts, Story
from meshwatch.localmesh.kube_emulator import EmulatorThread
from meshwatch.localmesh.launcher import LocalMesh, free_port
from meshwatch.localmesh.topology import BOOKINFO
from meshwatch.runtime.serving import Service, build_service, run_service
from meshwatch.settings import HostPort, Settings

DEMO_DEFAULTS = {"window": "2", "mode": "observe", "learn_for": "40s", "defence": "enforce"}
"""The demo learns briefly on short windows, then observes and enforces: it shows the whole
loop in about two minutes. Any explicit setting (flag, environment, file) still wins."""
DEMO_RATE = 20.0
ONCE_LIMIT = 90.0
DEMO_FLUSH = 0.5
"""Sidecars flush access logs every half second (Istio's default is one): detection of a
novel edge waits for the flush that carries its first call."""
PROGRESS_SECONDS = 5.0

PATHS = (
    "/productpage",
    "/productpage?u=normal",
    "/api/v1/products/1",
    "/api/v1/products/2/reviews",
)


async def demo_traffic(
    mesh: LocalMesh, rate: float, stop: asyncio.Event, counts: Counts | None = None
) -> None:
    """The demo's normal traffic into the mesh, until ``stop``."""
    i = 0
    while not stop.is_set():
        i += 1
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            status, _ = await mesh.request(
                "istio-ingressgateway", "productpage:9080", PATHS[i % len(PATHS)]
            )
            if counts is not None:
                counts.record(status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate)


async def _progress(service: Service, say: Callable[[str], None], learn_for: float) -> None:
    """A progress line while learning: calls, edges, nodes."""
    engine = service.monitor.engine
    started = time.monotonic()
    while engine.mode is not Mode.OBSERVE:
        await asyncio.sleep(PROGRESS_SECONDS)
        if engine.bundle is not None:  # promoted meanwhile
            break
        done = min(1.0, (time.monotonic() - started) / learn_for) if learn_for else 0.0
        bar = "#" * round(done * 20)
        graph = service.monitor.graph
        say(
            f"learning [{bar:<20}] {engine.learning.calls} calls, "
            f"{len(graph.edges)} edges, {len(graph.nodes)} nodes"
        )
    card = engine.bundle.card if engine.bundle else None
    if card is not None:
        say(f"learned {card.edge_count} edges; now observing (threshold {card.threshold:.3f})")


async def _play(
    service: Service, mesh: LocalMesh, story: Story, once: bool, stop: asyncio.Event
) -> None:
    await _progress(service, story.say, service.settings.learn_for)
    story.say(
        PRODUCTION_NOTE
        if service.settings.defence == "enforce"
        else f"defence: {service.settings.defence}"
    )
    await asyncio.sleep(3)
    attacks_stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(story.attack(mesh, attacks_stop))
        tasks.create_task(story.scan(mesh, attacks_stop))
        if once:
            deadline = time.monotonic() + ONCE_LIMIT
            while not story.blocked() and time.monotonic() < deadline and not stop.is_set():  # noqa: ASYNC110 (polls the attack figures)
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)
            attacks_stop.set()
            stop.set()
        else:
            await stop.wait()
            attacks_stop.set()


async def _rbac_denied(mesh: LocalMesh) -> int:
    total = 0
    for name in mesh.sidecars:
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            stats = await mesh.envoy_stats(name, "rbac")
            total += sum(v for k, v in stats.items() if k.endswith("rbac.denied"))
    return total


async def run_demo(
    settings: Settings,
    duration: float,
    rate: float,
    say: Callable[[str], None],
    once: bool = False,
) -> None:
    """Run until Ctrl-C (or ``duration`` seconds, or, with ``once``, until both attacks are
    blocked). Every process started is stopped on the way out."""
    if settings.als_listen.port == Settings().als_listen.port:
        settings = replace(settings, als_listen=HostPort("127.0.0.1", free_port()))
    # The demo prints each anomaly and policy itself, once and readably.
    logging.getLogger("meshwatch.anomalies").setLevel(logging.ERROR)
    logging.getLogger("meshwatch.runtime.defending").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="meshwatch-demo-") as tmp, EmulatorThread() as api:
        workdir = Path(tmp)
        if settings.policy_dir is None and not settings.policy_kube:
            config = api.write_kubeconfig(workdir / "kubeconfig")
            settings = replace(settings, policy_kube=True, kubeconfig=config)
        await _run(settings, duration, rate, say, once, workdir, api)


async def _run(
    settings: Settings,
    duration: float,
    rate: float,
    say: Callable[[str], None],
    once: bool,
    workdir: Path,
    api: EmulatorThread,
) -> None:
    service = build_service(settings)
    story = Story(say)
    service.monitoring.subscribers.append(story.on_events)
    service.defending.on_applied.append(story.on_policy)
    ready = asyncio.Event()

    def on_ready(_: Service) -> None:
        ready.set()

    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(run_service(service, on_ready))
        await ready.wait()
        http = f"http://{settings.http_listen.host}:{service.http_port}"
        page = f"{http}/?token={settings.api_token}" if settings.api_token else f"{http}/"
        say(f"meshwatch demo: open {page} for the live graph (it refreshes every 3 s)")
        async with LocalMesh(
            BOOKINFO, service.als_port, workdir / "mesh", flush_seconds=DEMO_FLUSH, authz=True
        ) as mesh:
            plane = LocalControlPlane(mesh, api.url, api.emulator.token)
            plane.on_live.append(story.on_live)
            control = tasks.create_task(plane.run())
            say(
                f"  {len(mesh.sidecars)} Envoy sidecars (Bookinfo, mTLS) streaming "
                f"to ALS :{service.als_port}; policies go to a Kubernetes API at {api.url}"
            )
            say(
                f"  graph API:   {http}/api/v1/graph (Grafana: {http}/api/v1/nodegraph/nodes|edges)"
            )
            say(f"  policies:    {http}/api/v1/policies")
            say(f"  anomalies:   {http}/api/v1/anomalies")
            say(f"  metrics:     {http}/metrics")
            say(
                f"  learning normal traffic for {settings.learn_for:g}s on {settings.window:g}s "
                "windows; Ctrl-C to stop."
            )
            traffic = tasks.create_task(demo_traffic(mesh, rate, service.stop, story.normal))
            play = tasks.create_task(_play(service, mesh, story, once, service.stop))
            if duration > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(service.stop.wait(), duration)
            else:
                await service.stop.wait()
            service.stop.set()
            await traffic
            await play
            for line in story.proof(await _rbac_denied(mesh)):
                say(line)
            control.cancel()
            await plane.close()
        await serving
    say("stopped: meshwatch, the control plane, the API emulator and every Envoy")
