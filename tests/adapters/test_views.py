"""The view routes over real loopback HTTP: Infinity, the Node Graph API plugin, the page and
its session cookie."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp

from meshwatch.adapters.api.views import PAGE_HEADERS, SESSION_COOKIE
from meshwatch.monitor.nodegraph import EDGE_FIELDS, NODE_FIELDS
from tests.conftest import Running
from tests.factories import make_call, workload

VENDOR = Path(__file__).parents[2] / "meshwatch" / "adapters" / "api" / "static" / "vendor"
CYTOSCAPE_SHA256 = "71fa9ebec21a7ca2c40cff6aacc30d1f6464e363662ad4b2c197e1adc770cd94"


async def _get(url: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as s, s.get(url, allow_redirects=False, **kwargs) as r:
        body = await r.json() if r.content_type == "application/json" else await r.read()
        return r.status, body, r


async def test_empty_mesh_gives_valid_empty_frames_on_every_route(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    assert await mw.get_json("/api/v1/nodegraph/nodes") == []
    assert await mw.get_json("/api/v1/nodegraph/edges") == []
    assert await mw.get_json("/api/graph/data") == {"nodes": [], "edges": []}
    page = await mw.get_json("/api/v1/nodegraph")
    assert (page["nodes"], page["edges"]) == ([], [])


async def test_node_graph_api_plugin_contract(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    a, b, c = workload("web", "shop"), workload("cart", "shop"), workload("ledger", "bank")
    mw.service.monitor.ingest([make_call(1e9, a, b), make_call(1e9, b, c)])
    assert (await mw.get_json("/api/health"))["status"] == "ok"
    fields = await mw.get_json("/api/graph/fields")
    assert [f["field_name"] for f in fields["nodes_fields"]] == [f.name for f in NODE_FIELDS]
    assert [f["field_name"] for f in fields["edges_fields"]] == [f.name for f in EDGE_FIELDS]
    arcs = {
        f["field_name"]: f["color"] for f in fields["nodes_fields"] if "arc__" in f["field_name"]
    }
    assert set(arcs) == {"arc__success", "arc__errors"}
    assert all(f["type"] in ("string", "number", "boolean") for f in fields["edges_fields"])
    data = await mw.get_json("/api/graph/data")
    declared_nodes = {f["field_name"] for f in fields["nodes_fields"]}
    assert all(set(n) == declared_nodes for n in data["nodes"])  # only declared fields
    assert {e["id"] for e in data["edges"]} == {
        "shop/web->shop/cart:9080",
        "shop/cart->bank/ledger:9080",
    }
    # the plugin passes its query string through
    only_bank = await mw.get_json("/api/graph/data?namespace=bank")
    assert [e["target"] for e in only_bank["edges"]] == ["bank/ledger"]


async def test_bad_filters_are_400_with_the_reason(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    for path in ("/api/v1/nodegraph/nodes", "/api/v1/nodegraph/edges", "/api/graph/data"):
        status, body, _ = await _get(mw.http + path + "?since=soon")
        assert status == 400 and "epoch" in body["detail"]
    status, body, _ = await _get(mw.http + "/api/v1/anomalies?namespace=a%20b")
    assert status == 400 and "namespace" in body["detail"]
    status, body, _ = await _get(mw.http + "/api/v1/anomalies?state=closed")
    assert status == 400


async def test_the_page_is_served_with_its_vendored_library_and_a_strict_policy(
    meshwatch: Any,
) -> None:
    mw: Running = await meshwatch()
    status, html, response = await _get(mw.http + "/")
    assert status == 200 and response.content_type == "text/html"
    assert b"/static/vendor/cytoscape.min.js" in html and b"https://" not in html  # no internet
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/page.js", "/static/page.css", "/static/vendor/cytoscape.min.js"):
        status, body, response = await _get(mw.http + path)
        assert status == 200 and body, path
        assert (
            response.headers["Content-Security-Policy"] == PAGE_HEADERS["Content-Security-Policy"]
        )
    _, script, _ = await _get(mw.http + "/static/vendor/cytoscape.min.js")
    assert hashlib.sha256(script).hexdigest() == CYTOSCAPE_SHA256
    assert (VENDOR / "cytoscape.LICENSE").read_text().startswith("Copyright (c) 2016-2026, The Cytoscape Consortium")  # fmt: skip
    assert "3.35.0" in (VENDOR / "README.md").read_text()


async def test_the_page_and_its_reads_sit_behind_the_token(meshwatch: Any) -> None:
    mw: Running = await meshwatch(api_token="tok")
    for path in ("/", "/static/page.js", "/api/v1/nodegraph", "/api/graph/data"):
        assert (await _get(mw.http + path))[0] == 401, path
    assert (await _get(mw.http + "/?token=wrong"))[0] == 401
    status, _, response = await _get(mw.http + "/?token=tok&refresh=5")
    assert status == 303 and response.headers["Location"] == "/?refresh=5"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    jar = {SESSION_COOKIE: cookie.value}
    assert (await _get(mw.http + "/", cookies=jar))[0] == 200
    assert (await _get(mw.http + "/api/v1/nodegraph", cookies=jar))[0] == 200
    # the cookie reads; it never changes anything (no cross-site request can use it to write)
    async with (
        aiohttp.ClientSession(cookies=jar) as s,
        s.post(mw.http + "/api/v1/policies/revoke", json={"all": True}) as r,
    ):
        assert r.status == 401
    assert (await _get(mw.http + "/", cookies={SESSION_COOKIE: "tok2"}))[0] == 401
