from __future__ import annotations

from meshwatch.calls import Call, EdgeKey, WindowSpec, Workload
from meshwatch.graph.mesh_graph import GraphLimits, MeshGraph
from meshwatch.graph.windows import OTHER
from meshwatch.monitor.readmodel import edge_doc
from tests.factories import make_call

A = Workload(
    id="default/productpage", namespace="default", workload="productpage-v1", app="productpage"
)
B = Workload(id="default/reviews", namespace="default", workload="reviews-v1", app="reviews")
C = Workload(id="default/ratings", namespace="default", workload="ratings-v1", app="ratings")


def call(
    t: float,
    src: Workload = A,
    dst: Workload = B,
    status: int = 200,
    path: str = "/reviews/1",
    method: str = "GET",
    sent: int = 10,
    received: int = 100,
    ms: float = 5.0,
) -> Call:
    return make_call(
        t, src, dst, method=method, path=path, status=status, sent=sent, received=received, ms=ms
    )


def test_window_counts_errors_bytes_and_templates() -> None:
    g = MeshGraph(GraphLimits(window=WindowSpec(60, 6)))
    for i in range(100):
        g.record(
            call(
                1000 + i * 0.1,
                status=503 if i % 10 == 0 else (404 if i % 10 == 1 else 200),
                path=f"/reviews/{i}",
                method="POST" if i % 2 else "GET",
            )
        )
    nodes, views = g.snapshot(1010)
    (view,) = views
    edge = edge_doc(view, "normal", None)
    assert (edge["source"], edge["target"], edge["port"]) == (
        "default/productpage",
        "default/reviews",
        9080,
    )
    assert (edge["requests"], edge["errors_5xx"], edge["errors_4xx"]) == (100, 10, 10)
    assert (edge["bytes_sent"], edge["bytes_received"]) == (1000, 10_000)
    assert edge["paths"] == {"/reviews/{num}": 100}
    assert edge["methods"] == {"GET": 50, "POST": 50}
    assert 4.8 <= edge["latency_p50_ms"] <= 5.2
    assert {n.id for n in nodes} == {"default/productpage", "default/reviews"}
    assert view.key == EdgeKey("default/productpage", "default/reviews", 9080)


def test_a_window_keeps_its_oldest_slice_while_the_next_window_starts_in_its_grace() -> None:
    g = MeshGraph(GraphLimits(window=WindowSpec(10, 5, grace=2)))
    for t in range(1000, 1010):
        g.record(call(t + 0.5))
    g.record(call(1010.5))  # the next window has begun; window [1000, 1010) is not judged yet
    _, (view,) = g.snapshot(1010)
    assert view.stats.requests == 10


def test_window_slides_and_old_slices_leave() -> None:
    g = MeshGraph(GraphLimits(window=WindowSpec(60, 6)))
    for i in range(30):
        g.record(call(1000 + i))  # t = 1000..1029
    _, (view,) = g.snapshot(1029)
    assert view.stats.requests == 30
    _, (view,) = g.snapshot(1075)  # window now covers [1020, 1080)
    assert view.stats.requests == 10
    _, (view,) = g.snapshot(1200)
    assert view.stats.requests == 0 and view.total_requests == 30


def test_distinct_paths_and_methods_are_bounded() -> None:
    g = MeshGraph(GraphLimits(max_paths=8, max_methods=2))
    for i in range(500):
        g.record(call(1000, path=f"/p{i}/x", method=("GET", "PUT", "PATCH", "DELETE")[i % 4]))
    _, (view,) = g.snapshot(1001)
    assert len(view.stats.paths) == 9 and view.stats.paths[OTHER] == 492
    assert set(view.stats.methods) == {"GET", "PUT", OTHER}


def test_stale_edges_and_nodes_age_out() -> None:
    g = MeshGraph(GraphLimits(edge_ttl=100))
    g.record(call(1000))
    g.record(call(1150, src=B, dst=C))
    assert g.expire(1160) == (1, 1)
    assert set(g.nodes) == {B.id, C.id}
    assert list(g.edges) == [(B.id, C.id, 9080)]


def test_memory_grows_with_edges_not_requests() -> None:
    spec = WindowSpec(60, 6, grace=2)
    g = MeshGraph(GraphLimits(window=spec))
    for i in range(20_000):
        g.record(call(1000 + i * 0.05, path=f"/reviews/{i}"))
    edge = g.edges[(A.id, B.id, 9080)]
    kept = 6 + spec.grace_slices  # the window, and the next one's first slice during its grace
    assert len(edge.window.slices) <= kept == 7
    assert sum(len(s.paths) for s in edge.window.slices) <= kept
    assert all(len(s.latency.buckets) < 50 for s in edge.window.slices)


def test_windows_from_two_receivers_merge() -> None:
    g1, g2, both = MeshGraph(GraphLimits()), MeshGraph(GraphLimits()), MeshGraph(GraphLimits())
    for i in range(200):
        c = call(1000 + i * 0.1, status=500 if i % 7 == 0 else 200, ms=float(i))
        (g1 if i % 2 else g2).record(c)
        both.record(c)
    _, (v1,) = g1.snapshot(1020)
    _, (v2,) = g2.snapshot(1020)
    _, (vb,) = both.snapshot(1020)
    v1.stats.merge(v2.stats)
    assert (v1.stats.requests, v1.stats.errors_5xx) == (vb.stats.requests, vb.stats.errors_5xx)
    assert v1.stats.latency_ms(0.99) == vb.stats.latency_ms(0.99)


def test_a_principal_only_node_merges_into_the_app_it_turns_out_to_be() -> None:
    g = MeshGraph(GraphLimits())
    early = Workload(id="default/sa:bookinfo-productpage", namespace="default")
    g.record(call(1000, src=early, status=500))
    g.record(call(1001, src=early))
    g.record(call(1002))  # A = default/productpage, same edge once merged
    g.record(call(1003, src=early, dst=C))
    assert g.merge_node(early.id, A) == 2
    assert set(g.nodes) == {A.id, B.id, C.id}
    _, views = g.snapshot(1005)
    by_target = {v.key.destination: v for v in views}
    assert by_target[B.id].stats.requests == 3
    assert by_target[B.id].stats.errors_5xx == 1
    assert by_target[B.id].first_seen == 1000
    assert by_target[C.id].key.source == A.id
