"""``meshwatch bench graph``: how long the views take on a large mesh.

A 2,000-node, 10,000-edge live graph (HTTP edges with a few paths each, every tenth one with
errors, some external hosts, some open anomalies), served by the real API app on loopback.
Each route is fetched over HTTP (aiohttp client) several times; the figures are the median and
the slowest, from the request to the last byte of the body: building the rows, serialising
them and the socket (the client's own JSON parsing is not the server's time). The goal is under 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from meshwatch.adapters.api.app import make_app
from meshwatch.adapters.api.context import ApiConfig
from meshwatch.calls import Call, EdgeKey, Protocol, Reporter, Workload
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.monitor.readmodel import EdgePolicyDoc, ReadModel, ServiceFigures
from meshwatch.monitor.replaying import replay_monitor

ROUTES = (
    ("Infinity nodes", "/api/v1/nodegraph/nodes"),
    ("Infinity edges", "/api/v1/nodegraph/edges"),
    ("page data", "/api/v1/nodegraph"),
    ("plugin data", "/api/graph/data"),
)
GOAL_MS = 200.0


def _node(i: int) -> Workload:
    if i % 100 == 99:
        host = f"api{i}.example.com"
        return Workload(id=f"external/{host}", workload=host, external=True, provider="example")
    ns = f"team-{i % 40}"
    app = f"svc-{i}"
    return Workload(
        id=f"{ns}/{app}",
        namespace=ns,
        workload=f"{app}-v1",
        app=app,
        version="v1",
        principal=f"spiffe://cluster.local/ns/{ns}/sa/{app}",
    )


def build_monitor(n_nodes: int, n_edges: int, now: float) -> ReadModel:
    """A read model over a learned graph of that size, with open anomalies and policies."""
    rng = random.Random(7)
    nodes = [_node(i) for i in range(n_nodes)]
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_edges:
        a, b = rng.randrange(n_nodes), rng.randrange(n_nodes)
        if a != b and not nodes[a].external:
            pairs.add((a, b))
    calls = []
    for a, b in sorted(pairs):
        for k in range(3):
            calls.append(
                Call(
                    now - 5 + k,
                    nodes[a],
                    nodes[b],
                    8080,
                    Protocol.HTTP,
                    "GET",
                    f"/items/{k}",
                    503 if (a + b) % 10 == 0 and k == 0 else 200,
                    100,
                    800,
                    float(5 + k),
                    "",
                    Reporter.SERVER,
                )
            )
    monitor.ingest(calls)
    read_model = ReadModel(monitor, ServiceFigures())
    denied = {EdgeKey(nodes[a].id, nodes[b].id, 8080) for a, b in sorted(pairs)[::500]}

    def policy(edge: EdgeKey) -> EdgePolicyDoc | None:
        if edge not in denied:
            return None
        return {"name": f"meshwatch-deny-{edge.destination}", "namespace": "x", "state": "enforced"}

    read_model.edge_policy = policy
    return read_model


class _Idle:
    """The running service, as far as these read-only routes need one."""

    def ready(self) -> bool:
        return True

    def metrics(self) -> bytes:
        return b""

    async def promote(self) -> dict[str, Any]:
        return {}

    def policies(self) -> dict[str, Any]:
        return {"policies": [], "refused": []}

    async def approve(self, source: str, target: str, port: int | None) -> dict[str, Any]:
        return {}

    async def revoke(self, name: str | None, namespace: str | None) -> dict[str, Any]:
        return {}


async def _time(session: aiohttp.ClientSession, url: str, repeats: int) -> tuple[list[float], int]:
    times = []
    rows = 0
    for _ in range(repeats):
        start = time.perf_counter()
        async with session.get(url) as response:
            raw = await response.read()
        times.append((time.perf_counter() - start) * 1000)
        body = json.loads(raw)
        rows = len(body) if isinstance(body, list) else len(body["nodes"]) + len(body["edges"])
    return times, rows


async def _run(read_model: ReadModel, repeats: int, say: Callable[[str], None]) -> None:
    app = make_app(read_model, _Idle(), ApiConfig())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            say(f"{'route':<16} {'rows':>6} {'median ms':>10} {'max ms':>8}  goal < {GOAL_MS:g} ms")
            for label, path in ROUTES:
                times, rows = await _time(session, f"http://127.0.0.1:{port}{path}", repeats)
                median, worst = statistics.median(times), max(times)
                verdict = "ok" if worst < GOAL_MS else "SLOW"
                say(f"{label:<16} {rows:>6} {median:>10.1f} {worst:>8.1f}  {verdict}")
    finally:
        await runner.cleanup()


def run_graph_benchmark(nodes: int = 2000, edges: int = 10_000, repeats: int = 5) -> list[str]:
    """Build the graph, then time every view route; the printed lines."""
    lines: list[str] = []
    say = lines.append
    start = time.perf_counter()
    read_model = build_monitor(nodes, edges, time.time())
    graph = read_model.monitor.graph
    say(
        f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges "
        f"(built in {time.perf_counter() - start:.1f} s); {repeats} fetches per route over loopback HTTP"
    )
    asyncio.run(_run(read_model, repeats, say))
    return lines
