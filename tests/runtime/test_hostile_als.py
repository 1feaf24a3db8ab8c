"""The ALS port is reachable by anything that reaches meshwatch: hostile streams must neither
stop it, nor blind it, nor be lost uncounted, nor grow its memory, nor speak for others."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc
from envoy.service.accesslog.v3 import als_pb2

from meshwatch.bench.entries import identifier
from meshwatch.decoding.lite import parse
from tests.als_streams import entry, message, send
from tests.conftest import Running, eventually

EDGE = ("shop/sa:client1", "shop/svc0")


def _edge(doc: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for e in doc["edges"] if (e["source"], e["target"]) == EDGE), None)


async def test_implausible_start_times_are_placed_at_receipt_and_counted(meshwatch: Any) -> None:
    mw: Running = await meshwatch(window=10.0, window_grace=0.0)
    rng = random.Random(1)
    now = time.time()
    weird = []
    for seconds in (0, 2**63 - 1, -(10**12), 10**12, int(now) + 86_400):
        e = entry(rng, 1, now)
        e.common_properties.start_time.seconds = seconds
        e.common_properties.start_time.nanos = 0
        weird.append(e)
    normal = [entry(rng, 1, time.time()) for _ in range(10)]
    assert await send(mw.service.als_port, [message(0, weird), message(None, normal)]) == (
        grpc.StatusCode.OK
    )

    async def settled() -> dict[str, Any] | None:
        doc = await mw.get_json("/api/v1/graph")  # answers 200 whatever the entries claimed
        e = _edge(doc)
        return e if e is not None and e["requests_total"] == 15 else None

    e = await eventually(settled, timeout=10)
    assert e["requests"] == 15, "a call dated a day ahead must not move the window"
    assert e["first_seen"] and e["last_seen"]
    assert mw.service.counters.entries_retimed["http"] == 5


async def test_a_first_entry_dated_1970_does_not_end_a_two_hour_learning(meshwatch: Any) -> None:
    mw: Running = await meshwatch(window=0.5, window_grace=0.0, mode="observe", learn_for=7200)
    rng = random.Random(2)
    first = entry(rng, 1, time.time())
    first.common_properties.start_time.seconds = 0
    assert await send(mw.service.als_port, [message(0, [first, entry(rng, 1, time.time())])]) == (
        grpc.StatusCode.OK
    )
    await asyncio.sleep(1.5)
    doc = await mw.get_json("/api/v1/baseline")
    assert doc["mode"] == "learn" and doc["last_promotion_error"] is None
    assert not mw.task.done()


async def test_a_due_promotion_with_too_little_data_keeps_learning_and_says_so(
    meshwatch: Any,
) -> None:
    mw: Running = await meshwatch(window=0.5, window_grace=0.0, mode="observe", learn_for=1)
    rng = random.Random(3)
    for _ in range(4):
        await send(mw.service.als_port, [message(0, [entry(rng, 1, time.time())])])
        await asyncio.sleep(0.3)

    async def failed() -> dict[str, Any] | None:
        doc = await mw.get_json("/api/v1/baseline")
        return doc if doc["last_promotion_error"] else None

    doc = await eventually(failed, timeout=10)
    assert doc["mode"] == "learn"
    assert "need at least" in doc["last_promotion_error"]
    assert mw.service.read_model.detection_status().promotion_failures >= 1
    assert not mw.task.done(), "a failed promotion never stops the service"


def _corrupt(raw: bytes, field: str, garbage: bytes) -> bytes:
    """``raw`` with one lazily read sub-field of its first entry replaced by ``garbage``."""
    lite = parse(raw)
    e = lite.http_logs.log_entry[0]
    if field == "response_code":
        e.response.response_code = garbage
    else:
        setattr(e.common_properties, field, garbage)
    return bytes(lite.SerializeToString())


async def test_a_malformed_field_drops_its_message_counted_and_the_stream_flows_on(
    meshwatch: Any,
) -> None:
    mw: Running = await meshwatch()
    rng = random.Random(4)
    bad_san = als_pb2.StreamAccessLogsMessage()  # a SAN that is not UTF-8
    e = bad_san.http_logs.log_entry.add()
    e.CopyFrom(entry(rng, 1, time.time()))
    tls = e.common_properties.tls_properties.SerializeToString().replace(b"client1", b"cl\xffnt1")
    messages = [message(0, [entry(rng, 1, time.time())])]
    for field in ("tls_properties", "response_flags", "response_code"):
        good = message(None, [entry(rng, 1, time.time()) for _ in range(3)])
        messages.append(_corrupt(good, field, b"\x0a\xff\xff\xff\xff\x0f"))
    # an address that is never read (the port comes from the cluster name) harms nothing
    good = message(None, [entry(rng, 1, time.time()) for _ in range(3)])
    messages.append(_corrupt(good, "downstream_local_address", b"\x0a\xff\xff\xff\xff\x0f"))
    messages.append(
        _corrupt(
            message(None, [entry(rng, 1, time.time()), entry(rng, 1, time.time())]),
            "tls_properties",
            tls,
        )
    )
    messages.append(message(None, [entry(rng, 1, time.time()) for _ in range(5)]))
    assert await send(mw.service.als_port, messages) == grpc.StatusCode.OK

    async def settled() -> dict[str, Any] | None:
        doc = await mw.get_json("/api/v1/graph")
        e = _edge(doc)
        return e if e is not None and e["requests_total"] == 1 + 2 * 3 + 3 + 1 + 5 else None

    await eventually(settled, timeout=10)
    counters = mw.service.counters
    assert counters.entries_received["http"] == 1 + 4 * 3 + 2 + 5
    dropped = counters.entries_dropped[("http", "malformed")]
    assert dropped + counters.calls_recorded == counters.entries_received["http"], (
        "every entry is recorded or counted as dropped"
    )
    assert dropped == 4  # one bad entry in each corrupted message; its neighbours are kept


async def test_long_paths_are_cut_counted_and_memory_stays_bounded(meshwatch: Any) -> None:
    mw: Running = await meshwatch(max_message_bytes=3 * 1024 * 1024)
    rng = random.Random(5)
    messages = [message(0)]
    for i in range(40):
        e = entry(rng, 1, time.time())
        e.request.path = f"/{i}/" + "x" * (2 * 1024 * 1024)
        messages.append(message(None, [e]))
    assert await send(mw.service.als_port, messages) == grpc.StatusCode.OK
    await eventually(lambda: mw.service.counters.calls_recorded == 40, timeout=15)
    assert mw.service.counters.fields_truncated["http"] == 40
    graph = mw.service.monitor.graph
    assert graph._template_chars <= 16 * 1024 * 1024
    assert all(len(raw) <= 2048 for raw in graph._template_cache)
    (edge,) = graph.edges.values()
    assert all(c is None or len(c.path) <= 2048 for c in edge.samples)


async def test_a_stream_speaking_for_another_pods_ip_is_refused(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    forged = als_pb2.StreamAccessLogsMessage(identifier=identifier(0))
    forged.identifier.node.id = forged.identifier.node.id.replace("127.0.0.1", "10.9.9.9")
    code = await send(mw.service.als_port, [forged.SerializeToString()])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert mw.service.counters.stream_errors["peer_mismatch"] == 1
    relaxed: Running = await meshwatch(als_verify_peer=False)
    assert await send(relaxed.service.als_port, [forged.SerializeToString()]) == (
        grpc.StatusCode.OK
    )


async def test_a_stream_that_switches_identity_part_way_is_closed(meshwatch: Any) -> None:
    mw: Running = await meshwatch()
    rng = random.Random(6)
    code = await send(
        mw.service.als_port,
        [message(0, [entry(rng, 1, time.time())]), message(1, [entry(rng, 1, time.time())])],
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert mw.service.counters.stream_errors["identity_switch"] == 1
