"""Grafana Node Graph rows: the fields Grafana reads, what they show, and the filters."""

from __future__ import annotations

import pytest

from meshwatch.calls import EdgeKey, Workload
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.monitor.nodegraph import (
    EDGE_FIELDS,
    NEW_DASH,
    NODE_FIELDS,
    PURPLE,
    RED,
    NodeGraphQuery,
    declared_only,
    node_graph,
)
from meshwatch.monitor.readmodel import EdgePolicyDoc
from meshwatch.monitor.replaying import replay_monitor
from tests.factories import make_call, workload
from tests.monitor.test_engine import T0, learned, traffic, wl

GRAFANA_NODE = {"id", "title", "subtitle", "mainstat", "secondarystat", "color", "icon"}
GRAFANA_EDGE = {
    "id", "source", "target", "mainstat", "secondarystat", "thickness", "color",
    "highlighted", "strokeDasharray",
}  # fmt: skip


def _no_policy(_edge: EdgeKey) -> EdgePolicyDoc | None:
    return None


def test_an_empty_mesh_gives_valid_empty_frames() -> None:
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    doc = node_graph(monitor, _no_policy, T0, NodeGraphQuery())
    assert (doc.nodes, doc.edges) == ([], [])


def test_rows_carry_grafanas_field_names_rates_errors_and_arcs() -> None:
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)  # a 60 s window
    a, b = workload("web"), workload("cart")
    s3 = Workload(id="external/s3.amazonaws.com", workload="s3.amazonaws.com", external=True, provider="aws:s3")  # fmt: skip
    calls = [make_call(T0 + i * 0.1, a, b, status=503 if i % 4 == 0 else 200) for i in range(120)]
    calls += [make_call(T0 + i, a, s3, port=443) for i in range(6)]
    monitor.ingest(calls)
    doc = node_graph(monitor, _no_policy, T0 + 30, NodeGraphQuery())
    nodes = {n["id"]: n for n in doc.nodes}
    assert set(nodes) == {a.id, b.id, s3.id}
    for row in doc.nodes:
        assert set(row) >= GRAFANA_NODE | {f.name for f in NODE_FIELDS}
        assert row["arc__success_color"] and row["arc__errors_color"]  # Infinity's arc colours
    cart = nodes[b.id]
    assert cart["mainstat"] == 2.0  # 120 calls in a 60 s window
    assert cart["secondarystat"] == 25.0  # error % of the calls it served
    assert (cart["arc__success"], cart["arc__errors"]) == (0.75, 0.25)
    assert cart["subtitle"] == "default"
    web = nodes[a.id]
    assert web["mainstat"] == 2.1  # a pure caller shows what it sends
    assert nodes[s3.id]["subtitle"] == "external · aws:s3"
    assert nodes[s3.id]["icon"] == "cloud"
    edges = {e["id"]: e for e in doc.edges}
    edge = edges["default/web->default/cart:9080"]
    assert set(edge) >= GRAFANA_EDGE | {f.name for f in EDGE_FIELDS}
    assert (edge["source"], edge["target"]) == (a.id, b.id)
    assert edge["mainstat"] == 2.0 and edge["secondarystat"] == pytest.approx(5.0, rel=0.02)
    assert edge["detail__principal"] == a.principal
    assert edge["detail__first_seen"] == "2026-01-05T00:00:00Z"
    assert (edge["highlighted"], edge["strokeDasharray"], edge["detail__denied"]) == (
        False,
        "",
        False,
    )


def test_anomalous_edges_are_red_highlighted_dashed_when_new_and_marked_when_denied() -> None:
    monitor, _, replay = learned(hours=3)
    t = T0 + 4 * 3600
    intruder = make_call(t + 0.25, wl("web"), wl("payments"), port=50051, path="/charge")
    replay.feed([*traffic(t - 30, 30), intruder])
    novel = EdgeKey("shop/web", "shop/payments", 50051)

    doc = node_graph(monitor, _no_policy, t + 1, NodeGraphQuery())
    row = next(e for e in doc.edges if e["id"] == "shop/web->shop/payments:50051")
    assert (row["color"], row["highlighted"], row["strokeDasharray"]) == (RED, True, NEW_DASH)
    assert "never seen while learning" in str(row["detail__reasons"])
    assert row["detail__status"] == "new"
    known = next(e for e in doc.edges if e["target"] == "shop/cart")
    assert (known["highlighted"], known["strokeDasharray"], known["detail__reasons"]) == (
        False,
        "",
        "",
    )
    payments = next(n for n in doc.nodes if n["id"] == "shop/payments")
    assert (payments["color"], payments["detail__anomalies"]) == (RED, 1)

    def enforced(edge: EdgeKey) -> EdgePolicyDoc | None:
        if edge != novel:
            return None
        return {"name": "meshwatch-deny-payments", "namespace": "shop", "state": "enforced"}

    denied = next(
        e
        for e in node_graph(monitor, enforced, t + 1, NodeGraphQuery()).edges
        if e["id"] == row["id"]
    )
    assert (denied["color"], denied["detail__denied"]) == (PURPLE, True)
    assert (denied["detail__policy"], denied["detail__policy_state"]) == ("meshwatch-deny-payments", "enforced")  # fmt: skip


def test_namespace_and_time_filters() -> None:
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    shop_web, shop_cart = workload("web", "shop"), workload("cart", "shop")
    bank = workload("ledger", "bank")
    monitor.ingest([make_call(T0, shop_web, shop_cart), make_call(T0 + 100, shop_cart, bank)])

    def ids(**query: str) -> set[str]:
        doc = node_graph(monitor, _no_policy, T0 + 101, NodeGraphQuery.parse(query))
        return {str(e["id"]) for e in doc.edges}

    everything = {"shop/web->shop/cart:9080", "shop/cart->bank/ledger:9080"}
    assert ids() == ids(namespace=".*") == ids(namespace="$__all") == everything
    assert ids(namespace="bank") == {"shop/cart->bank/ledger:9080"}  # either end
    assert ids(namespace="shop") == everything
    assert ids(namespace="(bank|other)") == {"shop/cart->bank/ledger:9080"}
    assert ids(since=str(T0 + 50)) == {"shop/cart->bank/ledger:9080"}
    assert ids(until=str(int((T0 + 50) * 1000))) == {"shop/web->shop/cart:9080"}  # Grafana's ms
    doc = node_graph(monitor, _no_policy, T0 + 101, NodeGraphQuery.parse({"namespace": "bank"}))
    assert {n["id"] for n in doc.nodes} == {"shop/cart", "bank/ledger"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"namespace": "Bad_NS"}, "not a Kubernetes namespace"),
        ({"since": "yesterday"}, "epoch seconds or milliseconds"),
        ({"since": "nan"}, "epoch seconds or milliseconds"),
        ({"since": "20", "until": "10"}, "until must not be before since"),
    ],
)
def test_bad_filters_are_refused_plainly(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeGraphQuery.parse(query)


def test_the_plugin_sees_only_declared_fields() -> None:
    rows = [{"id": "a", "title": "a", "arc__success_color": "green", "secret": "x"}]
    (row,) = declared_only(rows, NODE_FIELDS)
    assert list(row) == [f.name for f in NODE_FIELDS]
    assert "arc__success_color" not in row and "secret" not in row
