from __future__ import annotations

import random

import pytest

from meshwatch.calls import WindowSpec, Workload
from meshwatch.graph import mesh_graph
from meshwatch.graph.mesh_graph import GraphLimits, MeshGraph
from meshwatch.graph.paths import template_path
from meshwatch.graph.sketches import QuantileSketch
from tests.factories import make_call


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_sketch_quantiles_within_relative_accuracy(q: float) -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(2.0, 1.0) for _ in range(50_000)]
    sketch = QuantileSketch(accuracy=0.01)
    for v in values:
        sketch.add(v)
    exact = _exact(values, q)
    assert abs(sketch.quantile(q) - exact) / exact < 0.03


def test_sketches_merge_like_one_sketch_and_stay_bounded() -> None:
    rng = random.Random(5)
    a, b, whole = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for i in range(20_000):
        v = rng.expovariate(0.1)
        (a if i % 2 else b).add(v)
        whole.add(v)
    a.merge(b)
    assert a.count == whole.count
    assert a.quantile(0.99) == pytest.approx(whole.quantile(0.99))
    tiny = QuantileSketch(max_buckets=32)
    for i in range(1, 100_000, 7):
        tiny.add(float(i))
    assert len(tiny.buckets) <= 32
    assert tiny.quantile(0.99) == pytest.approx(99_000, rel=0.05)


def test_empty_sketch_has_no_quantile() -> None:
    assert QuantileSketch().quantile(0.5) != QuantileSketch().quantile(0.5)  # NaN


@pytest.mark.parametrize(
    ("raw", "template"),
    [
        ("/reviews/123", "/reviews/{num}"),
        (
            "/api/v1/orders/0b5e4c1a-1f2b-4c3d-9e8f-112233445566/items",
            "/api/v1/orders/{uuid}/items",
        ),
        ("/blobs/5f2b9c0e7a1d3e4f5a6b", "/blobs/{id}"),
        ("/products?id=7&token=secret", "/products"),
        ("/healthz", "/healthz"),
        ("/", "/"),
        ("/v2/users/alice/profile", "/v2/users/alice/profile"),
    ],
)
def test_path_templates(raw: str, template: str) -> None:
    assert template_path(raw) == template


def test_graph_inlined_hot_path_matches_the_readable_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mesh_graph, "_MAX_TEMPLATES", 100)
    a, b = Workload(id="a"), Workload(id="b")
    graph = MeshGraph(GraphLimits(window=WindowSpec(60, 6)))
    reference = QuantileSketch()
    rng = random.Random(9)
    for i in range(1000):
        ms = rng.lognormvariate(1.0, 1.5) if i % 50 else 0.0
        reference.add(ms)
        graph.record(make_call(1000.0, a, b, port=80, path=f"/x/{i}", sent=0, received=0, ms=ms))
    part = graph.edges[("a", "b", 80)].window.current
    assert part is not None
    assert (part.latency.buckets, part.latency.zero, part.latency.count) == (
        reference.buckets,
        reference.zero,
        reference.count,
    )
    assert part.paths == {"/x/{num}": 1000}
    assert len(graph._template_cache) <= 100
