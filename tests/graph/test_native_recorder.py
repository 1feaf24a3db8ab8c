"""The native graph recorder against the Python one: the same calls give the same graph,
slot for slot (edges, samples, slices, sketches, path and method counters, template cache)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.calls import Protocol, WindowSpec
from meshwatch.graph import mesh_graph
from meshwatch.graph.mesh_graph import GraphLimits, MeshGraph
from tests.factories import make_call, workload

if mesh_graph._recording is None:
    pytestmark = pytest.mark.skipif(
        not os.environ.get("CI"), reason="the native recorder is not built here"
    )

EXAMPLES = int(os.environ.get("MESHWATCH_FUZZ_EXAMPLES", "200"))
WORKLOADS = [workload(a, ns) for a in ("web", "api", "db") for ns in ("shop", "pay")]


def state(graph: MeshGraph) -> Any:
    """Everything the graph holds, as plain values."""
    edges = {}
    for key, e in graph.edges.items():
        slices = [
            (
                s.index,
                s.end,
                s.requests,
                s.errors_5xx,
                s.errors_4xx,
                s.bytes_sent,
                s.bytes_received,
                (s.latency.count, s.latency.zero, dict(s.latency.buckets)),
                dict(s.paths),
                list(s.paths),
                dict(s.methods),
            )
            for s in e.window.slices
        ]
        current = e.window.current.index if e.window.current else None
        edges[key] = (e.first_seen, e.last_seen, e.total_requests, list(e.samples), current, slices)
    return edges, dict(graph.nodes), dict(graph._template_cache), graph._template_chars


def both(calls: list[Any], limits: GraphLimits) -> tuple[Any, Any, Any, Any]:
    assert mesh_graph._recording is not None, "CI builds the native recorder"
    python = MeshGraph(dataclasses.replace(limits, native=False))
    native = MeshGraph(dataclasses.replace(limits, native=True))
    made_python = python.record_all(calls)
    made_native = native.record_all(calls)
    return state(python), state(native), made_python, made_native


_calls = st.lists(
    st.builds(
        lambda t, s, d, port, http, method, path, status, sent, received, ms: make_call(
            1_796_000_000.0 + t,
            WORKLOADS[s],
            WORKLOADS[d],
            port=port,
            protocol=Protocol.HTTP if http else Protocol.TCP,
            method=method if http else "",
            path=path if http else "",
            status=status if http else 0,
            sent=sent,
            received=received,
            ms=ms,
        ),
        st.floats(0, 120, allow_nan=False),  # slices change, late calls fall in the newest
        st.integers(0, len(WORKLOADS) - 1),
        st.integers(0, len(WORKLOADS) - 1),
        st.sampled_from([80, 9080, 5432]),
        st.booleans(),
        st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OTHER", "HEAD"]),
        st.sampled_from(["/", "/items/1", "/items/22", "/a/b", "/x" * 40])
        | st.text("abc/", max_size=8).map(lambda p: "/" + p),
        st.sampled_from([0, 200, 201, 302, 404, 429, 500, 503, 599]),
        st.integers(0, 2**40),
        st.integers(0, 2**70),  # Python ints: no overflow on either side
        st.sampled_from([0.0, 1e-4, 1e-3, 0.0011, 3.7, 250.0, 1e7]) | st.floats(0, 1e5),
    ),
    max_size=60,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_calls, st.integers(1, 6), st.integers(1, 5), st.integers(2, 40))
def test_native_and_python_recorders_build_the_same_graph(
    calls: list[Any], max_paths: int, max_methods: int, slices: int
) -> None:
    limits = GraphLimits(
        window=WindowSpec(window=60.0, slices=slices, grace=2.0),
        max_paths=max_paths,
        max_methods=max_methods,
    )
    python, native, made_python, made_native = both(calls, limits)
    assert native == python
    assert [(e.key, c) for e, c in made_native] == [(e.key, c) for e, c in made_python]


def test_sketch_collapse_happens_alike() -> None:
    """Sketches fold their lowest buckets past ``max_buckets``; both recorders fold alike."""
    calls = [
        make_call(1_796_000_000.0 + i * 0.01, WORKLOADS[0], WORKLOADS[1], ms=1.5**i)
        for i in range(60)
    ]
    more = [make_call(1_796_000_001.0, WORKLOADS[0], WORKLOADS[1], ms=2.0**i) for i in range(30)]
    python_graph = MeshGraph(dataclasses.replace(GraphLimits(), native=False))
    native_graph = MeshGraph(GraphLimits())
    for g in (python_graph, native_graph):
        g.record_all(calls)
        (e,) = g.edges.values()
        assert e.window.current is not None
        e.window.current.latency.max_buckets = 8  # collapse on the next new buckets
        g.record_all(more)
    assert state(native_graph) == state(python_graph)
    (e,) = native_graph.edges.values()
    assert e.window.current is not None and len(e.window.current.latency.buckets) == 8


def test_edges_found_by_identity_follow_expiry_and_merges() -> None:
    """The native recorder finds most edges by the identity of a call's ends; once an edge
    expires or is merged away, later calls of the same objects must land where the Python
    recorder puts them, never on the edge that left the graph."""
    old = make_call(1_796_000_000.0, WORKLOADS[0], WORKLOADS[1])
    stray = dataclasses.replace(WORKLOADS[2], id="unknown/cert-only")
    graphs = [MeshGraph(GraphLimits(native=False)), MeshGraph(GraphLimits())]
    for g in graphs:
        g.record_all([old, make_call(1_796_000_000.0, stray, WORKLOADS[1])])
        g.expire(1_796_000_000.0 + g.limits.edge_ttl + 1)  # both edges age out
        assert not g.edges
        later = 1_796_010_000.0
        g.record_all([make_call(later, WORKLOADS[0], WORKLOADS[1]) for _ in range(3)])
        g.record_all([make_call(later, stray, WORKLOADS[1]) for _ in range(2)])
        assert g.merge_node(stray.id, WORKLOADS[2]) == 1
        g.record_all([make_call(later + 1, stray, WORKLOADS[1]) for _ in range(4)])
    python, native = (state(g) for g in graphs)
    assert native == python
    totals = {k: e.total_requests for k, e in graphs[1].edges.items()}
    assert totals[(WORKLOADS[0].id, WORKLOADS[1].id, 9080)] == 3
    assert totals[(WORKLOADS[2].id, WORKLOADS[1].id, 9080)] == 2  # merged in
    assert totals[(stray.id, WORKLOADS[1].id, 9080)] == 4  # a new edge after the merge


def test_native_recorder_refuses_what_is_not_a_call() -> None:
    graph = MeshGraph(GraphLimits())
    call = make_call(1_796_000_000.0, WORKLOADS[0], WORKLOADS[1])
    for bad in (tuple(call)[:5], (*call, "extra"), "not a call"):
        with pytest.raises(TypeError, match="not a Call"):
            graph.record_all([bad])
