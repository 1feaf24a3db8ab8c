"""``meshwatch bench defence``: how fast an anomaly becomes a policy the API server accepted,
and how long planning plus the collateral simulation take at scale.

1. Latency: meshwatch's defence loop with the Kubernetes sink (the official client over HTTP)
   against the in-repo API emulator on loopback; anomalies are raised one at a time, each on a
   new destination, and timed from the event to the API server's answer to the apply.
2. Scale: one reconcile (plan, guards, simulation, schema validation) of 10,000 open
   anomalies over 2,000 destinations against a 5,000-edge learned baseline.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from meshwatch.adapters.kube.client import api_client
from meshwatch.adapters.kube.policy_sink import KubePolicySink
from meshwatch.calls import Call, EdgeKey, Protocol, Reporter, Workload
from meshwatch.detection.anomalies import Anomaly, AnomalyKind
from meshwatch.detection.baseline import Baseline
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.features.baselines import EdgeBaseline
from meshwatch.localmesh.kube_emulator import EmulatorThread
from meshwatch.monitor.events import AnomalyRaised
from meshwatch.monitor.replaying import replay_monitor
from meshwatch.policy.controlling import Defence
from meshwatch.policy.objects import load_schema, validate
from meshwatch.policy.params import DefenceMode, DefenceParams
from meshwatch.runtime.defending import DefenceService


def _params(mode: DefenceMode) -> DefenceParams:
    """Caps out of the way: the benchmark measures the pipeline, not the guards' limits."""
    return DefenceParams(mode=mode, max_policies=100_000, max_denies_per_minute=1_000_000)


def _node(i: int, role: str = "app") -> Workload:
    return Workload(
        id=f"ns{i % 20}/{role}{i}",
        namespace=f"ns{i % 20}",
        workload=f"{role}{i}-v1",
        app=f"{role}{i}",
        principal=f"spiffe://cluster.local/ns/ns{i % 20}/sa/{role}{i}",
        labels=(("app", f"{role}{i}"),),
    )


def _anomaly(n: int, source: Workload, target: Workload, port: int = 8080) -> Anomaly:
    return Anomaly(
        id=f"new-edge-{n}",
        kind=AnomalyKind.NEW_EDGE,
        source=source.id,
        target=target.id,
        port=port,
        score=float("inf"),
        threshold=float("inf"),
        first_seen=time.time(),
        last_seen=time.time(),
        reason=f"edge {source.id} -> {target.id}:{port} was never seen while learning",
    )


async def _latencies(count: int, kubeconfig: str) -> list[float]:
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    attacker = _node(0, "intruder")
    targets = [_node(i) for i in range(1, count + 1)]
    now = time.time()
    monitor.ingest(
        [
            Call(
                now,
                attacker,
                t,
                8080,
                Protocol.HTTP,
                "GET",
                "/",
                200,
                1,
                1,
                1.0,
                "",
                Reporter.SERVER,
                "",
            )
            for t in targets
        ]
    )
    sink = KubePolicySink(api_client(kubeconfig))
    service = DefenceService(Defence(_params(DefenceMode.DRY_RUN)), sink, monitor)
    loop = asyncio.create_task(service.run())
    await asyncio.wait_for(service.started.wait(), 30)
    out = []
    try:
        for n, target in enumerate(targets):
            anomaly = _anomaly(n, attacker, target)
            raised = time.time()
            service.publish([AnomalyRaised(anomaly)])
            while anomaly.id not in service.figures.accepted_at:
                await asyncio.sleep(0.001)
            out.append(service.figures.accepted_at[anomaly.id] - raised)
    finally:
        loop.cancel()
        sink.close()
    return out


def _scale(anomalies: int, destinations: int, edges: int) -> tuple[float, float, int, int]:
    apps = [_node(i) for i in range(destinations)]
    callers = [_node(i, "caller") for i in range(destinations, destinations + 2000)]
    attackers = [_node(i, "intruder") for i in range(anomalies // destinations + 1)]
    actors = {w.id: w for w in (*apps, *callers, *attackers)}
    known = {}
    for e in range(edges):
        key = EdgeKey(callers[e % len(callers)].id, apps[e % destinations].id, 8080)
        known[key] = EdgeBaseline(
            stats={},
            paths={f"/api/{e % 7}/{{num}}", "/healthz", f"/items/{e % 13}"},
            windows=20,
            first_seen=0.0,
            calls=500,
        )
    baseline = Baseline(known_edges=set(known), edges=known, actors=actors)
    defence = Defence(_params(DefenceMode.ENFORCE))
    now = time.time()
    for n in range(anomalies):
        defence.raised(_anomaly(n, attackers[n // destinations], apps[n % destinations]), now)
    started = time.perf_counter()
    actions = defence.reconcile(now + 1, actors.get, baseline, {}, list, writable=True)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    for obj in actions.apply:  # the schema check alone, again, to show its share
        validate(obj)
    schema = time.perf_counter() - started
    return seconds, schema, len(actions.apply), sum(p.simulation.checked for p in actions.policies)


def run_defence_benchmark(anomalies: int = 100) -> list[str]:
    lines = []
    load_schema()
    logging.getLogger("meshwatch.runtime.defending").setLevel(logging.ERROR)  # one line a policy
    with EmulatorThread() as cluster, tempfile.TemporaryDirectory() as tmp:
        config = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        latencies = asyncio.run(_latencies(anomalies, str(config)))
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000
    lines.append(
        f"anomaly -> policy accepted by the API server (Kubernetes sink, emulator on loopback), "
        f"{len(ordered)} anomalies: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1] * 1000:.1f} ms "
        f"(target p99 < 1000 ms)"
    )
    seconds, schema, policies, checked = _scale(10_000, 2_000, 5_000)
    lines.append(
        f"plan + guards + collateral simulation + schema check: 10000 anomalies over 2000 destinations, "
        f"5000-edge baseline: {seconds:.3f} s, of which Istio schema checks {schema:.3f} s "
        f"({policies} policies, {checked} normal calls replayed; target < 1 s)"
    )
    return lines
