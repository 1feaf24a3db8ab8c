"""Hand-made ALS streams over real gRPC, for tests that play a sidecar or an attacker."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import grpc
from envoy.service.accesslog.v3 import als_pb2

from meshwatch.bench.entries import http_entry, identifier

METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


def entry(rng: random.Random, caller: int, now: float, status: int = 200) -> Any:
    """An Istio-like inbound HTTP entry that started at ``now`` (as Envoy stamps it)."""
    e = http_entry(rng, caller, now)
    e.common_properties.start_time.seconds = int(now)
    e.common_properties.start_time.nanos = int((now % 1) * 1e9)
    e.response.response_code.value = status
    return e


def message(reporter: int | None, entries: Iterable[Any] = ()) -> bytes:
    """One serialized message; with ``reporter``, it is a stream's first (identifying) one."""
    m = als_pb2.StreamAccessLogsMessage()
    if reporter is not None:
        m.identifier.CopyFrom(identifier(reporter))
    m.http_logs.log_entry.extend(entries)
    return m.SerializeToString()


async def send(port: int, messages: list[bytes]) -> grpc.StatusCode:
    """Stream ``messages`` to meshwatch's ALS port and close; the status it answered."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_unary(METHOD, request_serializer=None, response_deserializer=None)
        try:
            await call(iter(messages))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK
