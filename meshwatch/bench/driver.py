"""The load side of ``meshwatch bench ingest``: a separate process streaming pre-serialized
ALS messages to the receiver over gRPC on loopback, as fast as the receiver takes them."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import grpc

from meshwatch.bench.entries import first_message, http_messages

METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


async def _stream(
    channel: grpc.aio.Channel, reporter: int, messages: list[bytes], until: float, sent: list[int]
) -> None:
    call = channel.stream_unary(METHOD, request_serializer=None, response_deserializer=None)

    async def requests() -> AsyncIterator[bytes]:
        yield first_message(reporter)
        i = 0
        while time.monotonic() < until:
            yield messages[i % len(messages)]
            sent[0] += 1
            i += 1

    await call(requests())


async def drive(
    port: int, streams: int, batch: int, seconds: float, callers: int
) -> dict[str, int]:
    """Send for ``seconds``; returns how many messages were sent."""
    per_stream = [
        http_messages(max(1, 2000 // batch), batch, callers, r, time.time()) for r in range(streams)
    ]
    sent = [0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_stream(channel, r, per_stream[r], until, sent) for r in range(streams))
        )
    return {"messages": sent[0], "entries": sent[0] * batch}


def main() -> None:
    """``python -m meshwatch.bench.driver --port P --streams S --batch B --seconds T``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--callers", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(drive(args.port, args.streams, args.batch, args.seconds, args.callers))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
