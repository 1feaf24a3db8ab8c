"""The native extractor and upb agree on what real Envoy sidecars send.

A recording ALS server keeps every raw message of every stream from a local mesh of real
Envoys (mTLS, HTTP with several methods and statuses, a TCP flow, calls leaving the mesh);
then each stream is decoded by both decoders, which must give identical calls and counts."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from envoy.service.accesslog.v3 import als_pb2

from meshwatch.adapters.als.server import start_server
from meshwatch.decoding import lite, wire
from meshwatch.decoding.streams import EntryLimits, read_identifier
from meshwatch.localmesh.launcher import LocalMesh
from meshwatch.settings import HostPort
from tests.conftest import eventually
from tests.decoding.test_native_differential import outcome
from tests.runtime.test_envoy_mesh import HTTPBIN_HOST, TOPOLOGY

pytestmark = [
    pytest.mark.envoy,
    pytest.mark.skipif(
        wire.native is None and not os.environ.get("CI"), reason="native extractor not built"
    ),
]


async def test_real_envoy_messages_decode_identically(tmp_path: Path) -> None:
    assert wire.native is not None, "CI builds the native extractor"
    streams: dict[int, list[bytes]] = defaultdict(list)

    async def record(requests: AsyncIterator[bytes], context: Any) -> Any:
        key = id(context)
        async for raw in requests:
            streams[key].append(raw)
        return als_pb2.StreamAccessLogsResponse()

    server, port = await start_server(record, HostPort("127.0.0.1", 0), 4 << 20)
    mesh = LocalMesh(TOPOLOGY, port, tmp_path / "mesh", flush_seconds=0.2)
    try:
        await mesh.start()
        plan = [("GET", 200), ("POST", 201), ("PUT", 503), ("DELETE", 404), ("PATCH", 200)]
        for i in range(25):
            method, status = plan[i % len(plan)]
            await mesh.request(
                "sleep",
                HTTPBIN_HOST,
                f"/items/{i}?q={i}",
                method,
                b"b" * i,
                size=i * 3,
                status=status,
            )
        await mesh.request("sleep", "api.stripe.com", "/v1/charges", "POST", b"{}")
        await mesh.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 500)
        for _ in range(2):
            await mesh.tcp("sleep", "tcp-echo.default.svc.cluster.local", b"z" * 321)

        def entries() -> int:
            total = 0
            for raws in streams.values():
                for raw in raws:
                    total += wire.entry_count(lite.parse(raw))[1]
            return total

        # both sidecars log each HTTP call; TCP flows log at close
        await eventually(lambda: entries() >= 2 * 25 + 2 + 2 or None, timeout=20)
    finally:
        await mesh.stop()
        await server.stop(0)
    kinds = set()
    calls = 0
    for raws in streams.values():
        identity = read_identifier(lite.parse(raws[0]).identifier)
        expected = outcome(lite.parse, raws, identity, EntryLimits())
        assert outcome(wire.native.parse, raws, identity, EntryLimits()) == expected
        assert "refused" not in expected
        kinds |= {r[0] for r in expected}
        calls += sum(len(r[2]) for r in expected)
    assert {"http", "tcp"} <= kinds
    assert calls >= 25 + 2 + 2
