"""The shipped dashboard is generated from code, and what it asks of meshwatch exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from meshwatch.adapters.grafana.dashboard import INFINITY, UID
from meshwatch.adapters.grafana.files import CONFIGMAP_FILE, DASHBOARD_FILE, generated
from meshwatch.monitor.nodegraph import EDGE_FIELDS, NODE_FIELDS
from meshwatch.monitor.readmodel import AnomalyDoc
from tests.conftest import Running
from tests.factories import make_call, workload

SHIPPED = Path(__file__).parents[2] / "istio" / "grafana"


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((SHIPPED / DASHBOARD_FILE).read_text()))


def test_committed_files_equal_what_the_code_generates() -> None:
    for name, text in generated().items():
        committed = (SHIPPED / name).read_text()
        assert committed == text, f"{name} is stale: run `meshwatch dashboard --out istio/grafana`"


def test_the_configmap_provisions_the_same_dashboard() -> None:
    doc = yaml.safe_load((SHIPPED / CONFIGMAP_FILE).read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "ConfigMap")
    assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(doc["data"][DASHBOARD_FILE]) == _dashboard()


def test_the_dashboard_has_the_promised_panels_and_variables() -> None:
    doc = _dashboard()
    assert doc["uid"] == UID
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["meshwatch"]["query"] == INFINITY
    namespace = variables["namespace"]
    assert namespace["multi"] and namespace["includeAll"] and namespace["allValue"] == ".*"
    panels = {p["title"]: p for p in doc["panels"] if p["type"] != "row"}
    graph = panels["Mesh graph"]
    assert graph["type"] == "nodeGraph"
    formats = {t["refId"]: t["format"] for t in graph["targets"]}
    assert formats == {"nodes": "node-graph-nodes", "edges": "node-graph-edges"}
    arcs = {a["field"]: a["color"] for a in graph["options"]["nodes"]["arcs"]}
    assert arcs == {"arc__success": "green", "arc__errors": "red"}
    assert panels["Open anomalies"]["type"] == "table"
    for title in (
        "Ingest: ALS entries",
        "Anomalies by kind",
        "Policies by mode and state",
        "Requests by destination namespace",
    ):
        assert panels[title]["type"] == "timeseries"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panels[title]["targets"])
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))


def _infinity_targets() -> list[dict[str, Any]]:
    return [
        t
        for p in _dashboard()["panels"]
        for t in p.get("targets", [])
        if t["datasource"]["type"] == INFINITY
    ]


async def test_every_infinity_query_is_a_route_meshwatch_answers(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    a, b = workload("productpage"), workload("reviews")
    mw.service.monitor.ingest([make_call(1e9, a, b) for _ in range(3)])
    grafana_values = {
        "${namespace:pipe}": ".*",
        "${__from}": "999999000000",
        "${__to}": "1999999999999",
    }
    targets = _infinity_targets()
    assert {t["url"] for t in targets} == {
        "/api/v1/nodegraph/nodes",
        "/api/v1/nodegraph/edges",
        "/api/v1/anomalies",
    }
    for target in targets:
        params = "&".join(
            f"{p['key']}={grafana_values.get(p['value'], p['value'])}"
            for p in target["url_options"]["params"]
        )
        doc = await mw.get_json(f"{target['url']}?{params}")
        if target["format"] == "node-graph-nodes":
            assert {r["id"] for r in doc} == {a.id, b.id}
            assert set(doc[0]) >= {f.name for f in NODE_FIELDS}
        elif target["format"] == "node-graph-edges":
            assert [r["source"] for r in doc] == [a.id]
            assert set(doc[0]) >= {f.name for f in EDGE_FIELDS}
        else:
            rows = doc[target["root_selector"]]
            assert rows == []  # learning: nothing open
            assert {c["selector"] for c in target["columns"]} <= set(AnomalyDoc.__annotations__)
