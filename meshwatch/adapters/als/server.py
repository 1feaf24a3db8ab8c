"""``envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`` on ``grpc.aio``.

The node identity arrives only in a stream's first message: it is read here, once, into an
immutable ``StreamIdentity`` that goes on the queue with every message of the stream; the
monitor core decodes the entries. Messages are received as raw bytes and parsed here with the
upb protos, so a malformed message is ours to count and answer: the stream is closed with
INVALID_ARGUMENT, the server and every other stream carry on. So is a stream that changes its
identifier part-way (Envoy never does; a forger might, to borrow another workload's name).
A message over ``max_message_bytes`` is refused by gRPC itself with RESOURCE_EXHAUSTED.

ALS carries no authentication, so a stream's claimed identity is bound to its connection:
the IP in the node id (``sidecar~<pod IP>~<pod>.<ns>~…``) must be the address the stream
comes from, or the stream is closed with PERMISSION_DENIED and counted
(``stream_errors{reason="peer_mismatch"}``). This stops a workload from speaking for another
pod; it does not stop a pod from lying about itself, and it must be relaxed
(``verify_peer=False``) where NAT or a proxy sits between sidecars and meshwatch.

Overload: parsed messages go into one bounded queue for the pipeline. When it is full the
message is dropped and its entries are counted in ``entries_dropped{reason="queue_full"}``
with a rate-limited warning. Envoy is never blocked: blocking would only move the loss into
Envoy's buffer, where it is invisible (Envoy drops on its side and ``logs_dropped`` stays 0).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from envoy.service.accesslog.v3 import als_pb2

from meshwatch.counters import IngestCounters
from meshwatch.decoding import wire
from meshwatch.decoding.streams import StreamIdentity, read_identifier
from meshwatch.errors import DecodeError
from meshwatch.settings import HostPort

log = logging.getLogger(__name__)

SERVICE = "envoy.service.accesslog.v3.AccessLogService"
METHOD = "StreamAccessLogs"
QueueItem = tuple[StreamIdentity, Any, float]  # (who streams, lite message, received at)


class RateLimitedLog:
    """Logs at most once per ``interval`` seconds, reporting how many were suppressed."""

    def __init__(self, interval: float = 10.0, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} similar warnings suppressed)" if self._suppressed else ""
        self.logger.warning(message + suffix, *args)
        self._last = now
        self._suppressed = 0


class AlsReceiver:
    """The gRPC servicer plus the bounded queue it feeds."""

    def __init__(
        self,
        counters: IngestCounters,
        queue_max_messages: int,
        verify_peer: bool = True,
        parse: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.verify_peer = verify_peer
        self.parse = parse or wire.choose("auto")[1]  # the native extractor when built
        self.counters = counters
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=queue_max_messages)
        self._closed_at: dict[str, float] = {}
        self._drop_log = RateLimitedLog()
        self._error_log = RateLimitedLog()

    async def stream_access_logs(
        self,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, als_pb2.StreamAccessLogsResponse],
    ) -> als_pb2.StreamAccessLogsResponse:
        """One Envoy access-log stream, from first message to close."""
        counters = self.counters
        identity: StreamIdentity | None = None
        first_identifier = b""
        counters.streams_opened += 1
        counters.streams_open += 1
        stream_key = ""
        parse = self.parse
        try:
            async for raw in requests:
                counters.messages_received += 1
                counters.bytes_received += len(raw)
                try:
                    reason = "malformed"
                    message = parse(raw)
                    if identity is None:
                        reason = "no_identifier"
                        first_identifier = message.identifier
                        identity = read_identifier(first_identifier)
                        if self.verify_peer and not peer_matches_node(
                            context.peer(), identity.node_id
                        ):
                            counters.stream_errors["peer_mismatch"] += 1
                            self._error_log.warning(
                                "refusing ALS stream from %s: it claims to be node %s",
                                context.peer(),
                                identity.node_id[:200],
                            )
                            await context.abort(
                                grpc.StatusCode.PERMISSION_DENIED,
                                "the node id's IP is not the address this stream comes from",
                            )
                        stream_key = f"{identity.node_id}|{identity.log_name}"
                        self._note_reconnect(stream_key)
                    elif message.identifier and message.identifier != first_identifier:
                        reason = "identity_switch"
                        raise DecodeError("the stream changed its node identifier part-way")
                except DecodeError as exc:
                    counters.decode_errors[reason] += 1
                    counters.stream_errors[reason] += 1
                    self._error_log.warning("closing ALS stream from %s: %s", context.peer(), exc)
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, f"undecodable message: {exc}"
                    )
                kind, n = wire.entry_count(message)
                counters.entries_received[kind] += n
                try:
                    self.queue.put_nowait((identity, message, time.time()))
                except asyncio.QueueFull:
                    counters.entries_dropped[(kind, "queue_full")] += n
                    self._drop_log.warning(
                        "ingest queue full (%d messages): dropped %d %s entries",
                        self.queue.maxsize,
                        n,
                        kind,
                    )
        except asyncio.CancelledError:
            counters.stream_errors["cancelled"] += 1
            raise
        finally:
            counters.streams_open -= 1
            if stream_key:
                self._closed_at[stream_key] = time.time()
        return als_pb2.StreamAccessLogsResponse()

    def _note_reconnect(self, stream_key: str) -> None:
        """A node that streamed before and comes back: the time between is a possible gap."""
        closed = self._closed_at.pop(stream_key, None)
        if closed is not None:
            self.counters.stream_reconnects += 1
            self.counters.stream_gap_seconds += max(0.0, time.time() - closed)
        if len(self._closed_at) > 100_000:
            self._closed_at.clear()


def peer_matches_node(peer: str, node_id: str) -> bool:
    """Whether a gRPC peer (``ipv4:10.1.2.3:5678``, ``ipv6:[fd00::1]:5678``) is the IP in an
    Envoy node id (``sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local``)."""
    parts = node_id.split("~")
    if len(parts) != 4:
        return False
    scheme, _, rest = peer.partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return False
    host = rest.rpartition(":")[0].strip("[]")
    try:
        claimed = ipaddress.ip_address(parts[1])
        actual = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(actual, ipaddress.IPv6Address) and actual.ipv4_mapped is not None:
        actual = actual.ipv4_mapped
    return claimed == actual


StreamHandler = Callable[
    [AsyncIterator[bytes], "grpc.aio.ServicerContext[bytes, als_pb2.StreamAccessLogsResponse]"],
    Awaitable[als_pb2.StreamAccessLogsResponse],
]


async def start_server(
    stream_handler: StreamHandler, listen: HostPort, max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """Serve ``StreamAccessLogs`` with ``stream_handler`` (raw bytes in); returns the server and
    the bound port (``OSError`` if it cannot bind)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_concurrent_streams", 1000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.so_reuseport", 0),
        ]
    )
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            METHOD: grpc.stream_unary_rpc_method_handler(
                stream_handler,
                request_deserializer=None,  # raw bytes: parsed by the wire decoder
                response_serializer=als_pb2.StreamAccessLogsResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(str(listen))
    if port == 0:
        raise OSError(f"cannot listen for ALS on {listen}")
    await server.start()
    return server, port
