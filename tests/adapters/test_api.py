"""The HTTP API over real loopback HTTP: auth, health, readiness, metrics and graph shape."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.adapters.api.app import make_app
from meshwatch.adapters.api.context import ApiConfig
from meshwatch.calls import Reporter, Workload
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.errors import ModelError
from meshwatch.monitor.readmodel import EdgeDoc, NodeDoc, ReadModel, ServiceFigures
from meshwatch.monitor.replaying import replay_monitor
from tests.conftest import Running
from tests.factories import make_call

EDGE_FIELDS = {
    "source",
    "target",
    "port",
    "protocol",
    "requests",
    "errors_5xx",
    "errors_4xx",
    "bytes_sent",
    "bytes_received",
    "latency_p50_ms",
    "latency_p99_ms",
    "paths",
    "methods",
    "first_seen",
    "last_seen",
    "requests_total",
    "status",
    "anomaly_score",
    "policy",
}
NODE_FIELDS = {
    "id",
    "namespace",
    "workload",
    "app",
    "version",
    "principal",
    "cluster_id",
    "labels",
    "external",
    "provider",
}


def test_the_read_model_declares_exactly_the_promised_fields() -> None:
    assert set(EdgeDoc.__annotations__) == EDGE_FIELDS
    assert set(NodeDoc.__annotations__) == NODE_FIELDS


async def _get(url: str, token: str = "") -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


async def test_bearer_token_guards_everything_but_probes(meshwatch: Any) -> None:
    mw: Running = await meshwatch(api_token="s3cret")
    assert (await _get(mw.http + "/healthz"))[0] == 200
    assert (await _get(mw.http + "/readyz"))[0] == 200
    status, _, headers = await _get(mw.http + "/api/v1/graph")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert (await _get(mw.http + "/metrics", token="wrong"))[0] == 401
    assert (await _get(mw.http + "/metrics", token="s3cret"))[0] == 200
    assert (await _get(mw.http + "/api/v1/graph", token="s3cret"))[0] == 200


async def test_graph_document_has_the_stable_field_names(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    a = Workload(
        id="ns/a",
        namespace="ns",
        workload="a-v1",
        app="a",
        principal="spiffe://cluster.local/ns/ns/sa/a",
    )
    b = Workload(
        id="external/s3.amazonaws.com",
        workload="s3.amazonaws.com",
        external=True,
        provider="aws:s3",
    )
    mw.service.monitor.ingest(
        [make_call(1e9, a, b, port=443, path="/bucket/1", reporter=Reporter.CLIENT)]
    )
    doc = await mw.get_json("/api/v1/graph")
    (edge,) = doc["edges"]
    assert set(edge) == EDGE_FIELDS
    assert all(set(n) == NODE_FIELDS for n in doc["nodes"])
    assert (edge["requests_total"], edge["status"], edge["anomaly_score"]) == (1, "normal", None)
    external = next(n for n in doc["nodes"] if n["external"])
    assert external["provider"] == "aws:s3"
    assert {n["id"]: n["external"] for n in doc["nodes"]} == {
        "ns/a": False,
        "external/s3.amazonaws.com": True,
    }


async def test_metrics_use_own_registry_and_istio_label_names(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    a = Workload(id="ns/a", namespace="ns", workload="a-v1", app="a")
    b = Workload(id="ns/b", namespace="ns", workload="b-v1", app="b")
    mw.service.monitor.ingest([make_call(1e9, a, b, port=8080) for _ in range(3)])
    status, text, headers = await _get(mw.http + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "meshwatch_als_entries_received",
        "meshwatch_als_entries_dropped",
        "meshwatch_als_streams_open",
        "meshwatch_als_decode_errors",
        "meshwatch_graph_edges",
        "meshwatch_graph_nodes",
    ):
        assert name in families, name
    assert "python_gc_objects_collected" not in families  # not the process-global registry
    (sample,) = [
        s for s in families["meshwatch_edge_requests"].samples if s.name.endswith("_total")
    ]
    assert sample.value == 3
    assert (
        sample.labels["source_workload"] == "a-v1"
        and sample.labels["destination_workload_namespace"] == "ns"
    )
    assert families["meshwatch_graph_edges"].samples[0].value == 1


class Switch:
    """A service that is not ready until told (the API's ``Control``)."""

    def __init__(self) -> None:
        self.on = False

    def ready(self) -> bool:
        return self.on

    def metrics(self) -> bytes:
        return b""

    async def promote(self) -> dict[str, Any]:
        raise ModelError("nothing learned")

    def policies(self) -> dict[str, Any]:
        return {"policies": [], "refused": []}

    async def approve(self, source: str, target: str, port: int | None) -> dict[str, Any]:
        return {}

    async def revoke(self, name: str | None, namespace: str | None) -> dict[str, Any]:
        return {"revoked": []}


async def test_app_factory_reports_not_ready_until_told() -> None:
    switch = Switch()
    monitor = replay_monitor(DetectionParams(), Mode.LEARN)
    app = make_app(ReadModel(monitor, ServiceFigures()), switch, ApiConfig())
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert (await _get(f"http://127.0.0.1:{port}/readyz"))[0] == 503
        switch.on = True
        assert (await _get(f"http://127.0.0.1:{port}/readyz"))[0] == 200
    finally:
        await runner.cleanup()


async def _promote_cli(url: str, token: str) -> tuple[int, str]:
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshwatch",
        "baseline",
        "promote",
        "--url",
        url,
        "--token",
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_baseline_promote_command_reports_the_servers_answer(meshwatch: Any) -> None:
    mw: Running = await meshwatch(api_token="t0k")
    code, err = await _promote_cli(mw.http, "t0k")
    assert code == 1
    assert "promote refused (409)" in err
    assert "need at least" in err
    doc = await mw.get_json("/api/v1/baseline", token="t0k")
    assert doc["mode"] == "learn"
    code, err = await _promote_cli(mw.http, "wrong")
    assert code == 1
    assert "(401)" in err
