"""Soak: real Envoy sidecars and a hostile stream side by side for about forty seconds.

The hostile sender plays everything the ALS port has been probed with: random and truncated
protobuf, forged node ids, identity switches, implausible timestamps, 1 MiB paths and
malformed sub-fields. The clean traffic through the Envoys must still be counted exactly, the
service must stay up, and its memory must stay within a stated bound.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from meshwatch.bench.ingest import rss_mb
from meshwatch.localmesh.launcher import LocalMesh
from tests.als_streams import entry, message, send
from tests.conftest import Running, eventually
from tests.runtime.test_envoy_mesh import HTTPBIN, HTTPBIN_HOST, SLEEP, TOPOLOGY, edge
from tests.runtime.test_hostile_als import _corrupt

pytestmark = pytest.mark.envoy
SOAK_SECONDS = 40.0
RSS_BOUND_MB = 120.0  # growth allowed over the soak (the graph of the hostile edges included)


async def _hostile(port: int, until: float) -> int:
    rng = random.Random(13)
    streams = 0
    while time.monotonic() < until:
        now = time.time()
        weird = entry(rng, rng.randrange(50), now)
        weird.common_properties.start_time.seconds = rng.choice([0, 2**63 - 1, int(now) + 86_400])
        long_path = entry(rng, 1, now)
        long_path.request.path = "/" + "y" * (1024 * 1024)
        good = message(None, [entry(rng, 2, now) for _ in range(3)])
        forged = message(0, [entry(rng, 3, now)]).replace(b"127.0.0.1", b"10.66.6.6")
        batch = [
            [message(0, [weird]), message(None, [long_path])],
            [message(1), bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))],
            [message(2), _corrupt(good, "tls_properties", b"\xff\xff\xff")],
            [message(3), message(4)],  # an identity switch
            [forged],
            [message(5, [entry(rng, 4, now)])[: rng.randrange(1, 60)]],  # truncated
        ]
        await asyncio.gather(*(send(port, messages) for messages in batch))
        streams += len(batch)
        await asyncio.sleep(0.05)
    return streams


async def test_clean_traffic_is_counted_exactly_beside_a_hostile_stream(
    meshwatch: Any, tmp_path: Path
) -> None:
    mw: Running = await meshwatch(max_message_bytes=2 * 1024 * 1024)
    async with LocalMesh(TOPOLOGY, mw.service.als_port, tmp_path / "mesh", flush_seconds=0.2) as m:
        await m.request("sleep", HTTPBIN_HOST, "/warm-up")
        await eventually(lambda: _requests(mw, 1), timeout=15)
        before = rss_mb()
        until = time.monotonic() + SOAK_SECONDS
        hostile = asyncio.create_task(_hostile(mw.service.als_port, until))
        sent = 1
        while time.monotonic() < until:
            code, _ = await m.request("sleep", HTTPBIN_HOST, f"/items/{sent}")
            assert code == 200
            sent += 1
            await asyncio.sleep(0.1)
        streams = await hostile
        e = await eventually(lambda: _requests(mw, sent), timeout=20)
        await asyncio.sleep(1.0)  # nothing more may arrive on the clean edge
        e = await _requests(mw, sent)
        assert e is not None and e["requests_total"] == sent, "clean calls counted exactly"
        growth = rss_mb() - before
        print(f"soak: {sent} clean calls, RSS growth {growth:.1f} MB")
    counters = mw.service.counters
    assert streams > 100
    assert counters.stream_errors["peer_mismatch"] > 0
    assert counters.stream_errors["identity_switch"] > 0
    assert counters.entries_retimed["http"] > 0 and counters.fields_truncated["http"] > 0
    assert counters.entries_dropped[("http", "malformed")] > 0
    assert not mw.task.done()
    assert growth < RSS_BOUND_MB, f"RSS grew {growth:.0f} MB over the soak"


async def _requests(mw: Running, n: int) -> dict[str, Any] | None:
    doc = await mw.get_json("/api/v1/graph")
    e = edge(doc, SLEEP, HTTPBIN)
    return e if e is not None and e["requests_total"] >= n else None
