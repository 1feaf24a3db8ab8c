"""The load side of ``meshwatch bench ingest``: a separate process streaming pre-serialized
ALS messages to the receiver over gRPC on loopback, as fast as the receiver takes them.

It uses grpc's synchronous client (the request iterator is drained by grpc's own thread), which
sends several times more messages per second than a ``grpc.aio`` client on the same core, so
the receiver, not the driver, is what the benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator

import grpc

from meshwatch.bench.entries import first_message, http_messages

METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


def _requests(
    reporter: int, messages: list[bytes], until: float, sent: list[int]
) -> Iterator[bytes]:
    yield first_message(reporter)
    i = 0
    while time.monotonic() < until:
        yield messages[i % len(messages)]
        sent[reporter] += 1
        i += 1


def drive(port: int, streams: int, batch: int, seconds: float, callers: int) -> dict[str, int]:
    """Send for ``seconds`` on ``streams`` concurrent streams; returns how many messages were sent."""
    per_stream = [
        http_messages(max(1, 2000 // batch), batch, callers, r, time.time()) for r in range(streams)
    ]
    sent = [0] * streams
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_unary(METHOD, request_serializer=None, response_deserializer=None)
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(
                target=call, args=(_requests(r, per_stream[r], until, sent),), daemon=True
            )
            for r in range(streams)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
    return {"messages": sum(sent), "entries": sum(sent) * batch}


def main() -> None:
    """``python -m meshwatch.bench.driver --port P --streams S --batch B --seconds T``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--callers", type=int, default=50)
    args = parser.parse_args()
    print(
        json.dumps(drive(args.port, args.streams, args.batch, args.seconds, args.callers)),
        flush=True,
    )


if __name__ == "__main__":
    main()
