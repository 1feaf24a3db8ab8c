"""Overload: a full ingest queue drops whole messages, counts every dropped entry, and never
blocks the sender; received = recorded + duplicates + dropped, so nothing goes unaccounted."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Running, eventually

DRIVER = """
import sys, threading, time, grpc
from meshwatch.bench.entries import first_message, http_messages
port, streams, per_stream = (int(a) for a in sys.argv[1:4])
method = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    call = channel.stream_unary(method, request_serializer=None, response_deserializer=None)
    def stream(r):
        call(iter([first_message(r), *http_messages(per_stream, 100, 20, r, time.time())]), timeout=50)
    threads = [threading.Thread(target=stream, args=(r,)) for r in range(streams)]
    [t.start() for t in threads]
    [t.join() for t in threads]
"""


async def test_full_queue_drops_and_counts_without_blocking_the_sender(meshwatch: Any) -> None:
    mw: Running = await meshwatch(queue_max_messages=2)
    streams, per_stream = 8, 50
    sent = streams * per_stream * 100
    driver = await asyncio.create_subprocess_exec(  # a separate process, like real sidecars
        sys.executable,
        "-c",
        DRIVER,
        str(mw.service.als_port),
        str(streams),
        str(per_stream),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    started = time.monotonic()
    _, err = await asyncio.wait_for(driver.communicate(), 60)
    sending = time.monotonic() - started
    assert driver.returncode == 0, err.decode()
    counters = mw.service.counters

    def settled() -> bool:
        done = counters.calls_recorded + sum(counters.entries_duplicate.values())
        return done + sum(counters.entries_dropped.values()) == sent

    await eventually(settled, timeout=30)
    dropped = counters.entries_dropped[("http", "queue_full")]
    assert dropped > 0
    assert dropped % 100 == 0, "whole messages are dropped"
    assert counters.entries_received["http"] == sent
    assert sending < 30
    async with aiohttp.ClientSession() as s, s.get(mw.http + "/metrics") as r:
        families = {f.name: f for f in text_string_to_metric_families(await r.text())}
    (sample,) = [
        x
        for x in families["meshwatch_als_entries_dropped"].samples
        if x.name.endswith("_total") and x.labels == {"kind": "http", "reason": "queue_full"}
    ]
    assert sample.value == dropped
    assert (await mw.get_json("/healthz"))["status"] == "ok"


async def test_a_sidecar_that_comes_back_is_counted_as_a_reconnect_with_its_gap(
    meshwatch: Any,
) -> None:
    import grpc

    from meshwatch.bench.entries import first_message, http_messages

    mw: Running = await meshwatch()
    method = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mw.service.als_port}") as channel:
        for _ in range(2):
            call = channel.stream_unary(method, request_serializer=None, response_deserializer=None)
            await call(iter([first_message(3), *http_messages(1, 10, 2, 3, time.time())]))
            await asyncio.sleep(0.3)
    counters = mw.service.counters
    assert counters.streams_opened == 2
    assert counters.stream_reconnects == 1
    assert 0.2 <= counters.stream_gap_seconds < 5
