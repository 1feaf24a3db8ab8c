"""``meshwatch bench detect``: scoring time, novel-edge check cost, memory per tracked edge."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np

from meshwatch.calls import Call, EdgeKey, Protocol, Reporter, Workload
from meshwatch.detection.baseline import Baseline
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.forest import EdgeIsolationForest
from meshwatch.features.baselines import EdgeBaseline, FeatureStats
from meshwatch.features.rows import EDGE_COLUMNS, FEATURE_COLUMNS
from meshwatch.graph.mesh_graph import GraphLimits, MeshGraph
from meshwatch.monitor.replaying import replay_monitor


def _calls(edges: int, per_edge: int, t0: float) -> list[Call]:
    nodes = [
        Workload(id=f"ns/app{i}", namespace="ns", workload=f"app{i}-v1", app=f"app{i}")
        for i in range(edges + 1)
    ]
    return [
        Call(
            t0 + k * 0.01,
            nodes[e],
            nodes[(e + 1) % len(nodes)],
            8080,
            Protocol.HTTP,
            "GET",
            f"/items/{k % 50}",
            200,
            100,
            1000,
            3.0 + (k % 7),
            "",
            Reporter.SERVER,
            "",
        )
        for k in range(per_edge)
        for e in range(edges)
    ]


def run_detect_benchmark() -> Iterator[str]:
    yield "meshwatch bench detect"
    rng = np.random.default_rng(3)
    train = rng.normal(size=(20_000, len(FEATURE_COLUMNS)))
    rows = rng.normal(size=(10_000, len(FEATURE_COLUMNS)))
    for trees in (100, 200):
        model = EdgeIsolationForest(n_estimators=trees, random_state=0).fit(train)
        model.anomaly_score(rows)
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            model.anomaly_score(rows)
            runs.append(time.perf_counter() - t)
        yield (
            f"scoring 10,000 edge-windows ({trees} trees): median {statistics.median(runs) * 1e3:.1f} ms, "
            f"best {min(runs) * 1e3:.1f} ms (target < 100 ms)"
        )
    small = rows[:20]
    t = time.perf_counter()
    for _ in range(200):
        model.anomaly_score(small)
    yield f"scoring one window of 20 edges: {(time.perf_counter() - t) / 200 * 1e3:.2f} ms"

    baseline = Baseline(known_edges={EdgeKey(f"ns/a{i}", f"ns/b{i}", 8080) for i in range(10_000)})
    probe = EdgeKey("ns/a5", "ns/b5", 8080)
    n = 1_000_000
    t = time.perf_counter()
    for _ in range(n):
        baseline.is_novel(probe)
    check = (time.perf_counter() - t) / n
    yield f"novel-edge check: {check * 1e9:.0f} ns per check; it runs once per edge the graph creates, not per call"

    # What detection adds to ingest for calls on existing edges (the per-call overhead).
    calls = _calls(200, 500, 1_000_000.0)
    graph_a = MeshGraph(GraphLimits())
    graph_a.record_all(calls)
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    monitor.ingest(calls)
    batches = [calls[i : i + 100] for i in range(0, len(calls), 100)]
    plain, hooked = [], []
    for _ in range(5):
        t = time.perf_counter()
        for b in batches:
            graph_a.record_all(b)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        for b in batches:
            monitor.ingest(b)
        hooked.append(time.perf_counter() - t)
    per_call = (min(hooked) - min(plain)) / len(calls)
    yield (
        f"ingest per call: {min(plain) / len(calls) * 1e6:.2f} us graph only, {min(hooked) / len(calls) * 1e6:.2f} us "
        f"with detection hooks: {max(0.0, per_call) * 1e9:.0f} ns overhead per call (target < 2 us)"
    )

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    graph = MeshGraph(GraphLimits())
    for slice_start in range(6):
        graph.record_all(_calls(1000, 5, 2_000_000.0 + slice_start * 10))
    after_graph = tracemalloc.get_traced_memory()[0]
    stats = {c: FeatureStats(1.0, 2.0) for c in EDGE_COLUMNS}
    edges = {
        EdgeKey(f"ns/a{i}", f"ns/b{i}", 8080): EdgeBaseline(
            dict(stats), {f"/p{k}" for k in range(20)}, 100, 0.0
        )
        for i in range(1000)
    }
    after_baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    yield (
        f"memory per tracked edge: {(after_graph - before) / 1000 / 1024:.1f} KiB in the live graph "
        f"(6 slices, sketches, paths) + {(after_baseline - after_graph) / 1000 / 1024:.1f} KiB of baseline "
        f"({len(edges)} edges measured)"
    )
