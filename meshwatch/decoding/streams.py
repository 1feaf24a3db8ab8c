"""Turn the messages of ALS streams into ``Call`` values, each call counted once.

Envoy sends the node identity only in a stream's first message. The transport reads it into
an immutable ``StreamIdentity`` and hands every message on with it; the one ``Decoder`` (owned
by the monitor core) keeps each stream's caches, keyed weakly on that identity, so nothing
mutable rides the ingest queue and the caches go when the stream's last message is done.

Counting once: both sidecars of an in-mesh call log it. Server-side (``inbound|…``) entries
are authoritative, because only the server sees the caller's verified certificate. A
client-side entry is a duplicate when the upstream proved it is a sidecar (an mTLS SAN or
Istio ``upstream_peer`` metadata): that upstream logs the call itself. Every other client-side
entry is kept: calls leaving the mesh, calls to workloads without a sidecar, and calls that
failed before they reached any upstream (no route, no healthy upstream).

Speed: messages arrive as the native extractor's entries (``decoding._native``, whose loop
mirrors the upb loops here) or as the narrow view types of ``decoding.lite``. Who-called-whom
depends only on the upstream cluster, the TLS properties, the filter state and the custom tags
of an entry, and those repeat for every request of a connection, so their raw bytes key a
bounded cache of resolved ends. The per-entry work is a handful of scalar reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from weakref import WeakKeyDictionary

from envoy.config.core.v3 import address_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import wrappers_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import DecodeError as ProtoDecodeError

from meshwatch.calls import UNKNOWN, Call, Protocol, Reporter, Workload
from meshwatch.decoding.flags import short_codes
from meshwatch.decoding.lite import AnyPair, StringPair
from meshwatch.decoding.structs import any_to_mapping, struct_to_dict
from meshwatch.decoding.wire import KINDS, is_native, native
from meshwatch.errors import DecodeError
from meshwatch.identity.clusters import Direction, parse_cluster
from meshwatch.identity.resolving import IdentityResolver

# Custom tag carrying the upstream's URI SAN in plain Envoy (``%UPSTREAM_PEER_URI_SAN%``).
UPSTREAM_SAN_TAG = "upstream_peer_san"
# Custom tag carrying ``%REQUESTED_SERVER_NAME%`` for TLS passthrough egress.
SNI_TAG = "requested_server_name"
DOWNSTREAM_PEER_KEYS = ("downstream_peer", "wasm.downstream_peer")
UPSTREAM_PEER_KEYS = ("upstream_peer", "wasm.upstream_peer")

# ``Call(...)`` goes through NamedTuple's generated ``__new__`` (~0.55 µs for 14 fields);
# ``tuple.__new__(Call, values)`` builds the identical object in half the time.
_new_call: Callable[[type[Call], tuple[Any, ...]], Call] = tuple.__new__

_METHODS = ("", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_MAX_CACHE = 65_536
# Port not in the cluster name: read it from the entry's address (rare: passthrough clusters).
_PORT_FROM_DOWNSTREAM = -1
_PORT_FROM_UPSTREAM = -2


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class StreamIdentity:
    """The sidecar behind one ALS stream, read from the stream's first message.

    Compared and hashed by identity: each stream has its own, even when a node reconnects.
    """

    node_id: str
    log_name: str
    metadata: Mapping[str, Any]


def read_identifier(raw_identifier: bytes) -> StreamIdentity:
    """The stream's identity from its first message (``DecodeError`` without one)."""
    try:
        identifier = als_pb2.StreamAccessLogsMessage.Identifier.FromString(raw_identifier)
    except ProtoDecodeError as exc:
        raise DecodeError(f"malformed stream identifier: {exc}") from exc
    if not identifier.node.id:
        raise DecodeError("first message of an ALS stream carries no node identifier")
    node = identifier.node
    return StreamIdentity(
        node.id, identifier.log_name, MappingProxyType(struct_to_dict(node.metadata))
    )


@dataclass(frozen=True, slots=True)
class EntryLimits:
    """What an entry may claim. Every timestamp and string in an entry is hostile input.

    An entry that starts more than ``max_future`` seconds after it was received, or more than
    ``max_age`` before, is placed at its receive time and counted (``retimed``): one entry
    dated a day ahead would otherwise move its edge's window into the future and blind
    detection on it, and one dated 2^63 s would break every date shown. Paths and authorities
    longer than ``max_field`` characters are cut there and counted (``truncated``), so memory
    is bounded by calls' shapes, not by what a sender writes.
    """

    max_future: float = 60.0
    max_age: float = 86_400.0
    max_field: int = 2048


@dataclass(slots=True)
class DecodeResult:
    """What one message produced; the counters feed metrics."""

    kind: str = "none"  # http, tcp or none
    calls: list[Call] = field(default_factory=list)
    entries: int = 0
    duplicates: int = 0
    intermediate: int = 0
    retimed: int = 0
    truncated: int = 0
    malformed: int = 0
    first_error: str = ""


@dataclass(frozen=True, slots=True)
class Ends:
    """Who called whom, resolved once per distinct connection context.

    ``destination`` is ``None`` when it must come from each entry's authority or SNI.
    """

    source: Workload
    destination: Workload | None
    port: int
    side: Reporter


_DUPLICATE = Ends(UNKNOWN, UNKNOWN, 0, Reporter.CLIENT)
_ENTRY_ERRORS = (ProtoDecodeError, UnicodeDecodeError, ValueError, OverflowError)


def _pairs(raw_entries: Any, pair_type: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in raw_entries:
        pair = pair_type.FromString(raw)
        out[pair.key] = pair.value
    return out


def _peer(filter_state: dict[str, bytes], keys: tuple[str, ...]) -> dict[str, Any] | None:
    for key in keys:
        if key in filter_state:
            return any_to_mapping(AnyProto.FromString(filter_state[key]))
    return None


def _address_port(raw: bytes) -> int:
    port: int = address_pb2.Address.FromString(raw).socket_address.port_value
    return port


class Decoder:
    """Decodes the messages of every stream; one per monitor core, owned by its task."""

    def __init__(self, resolver: IdentityResolver, limits: EntryLimits) -> None:
        self._resolver = resolver
        self.limits = limits
        self._streams: WeakKeyDictionary[StreamIdentity, StreamDecoder] = WeakKeyDictionary()

    def decode(self, stream: StreamIdentity, message: Any, received_at: float) -> DecodeResult:
        """Decode one message of ``stream`` (as ``wire.choose``'s parser made it), received
        at ``received_at``."""
        decoder = self._streams.get(stream)
        if decoder is None:
            reporter = self._resolver.reporter(stream.node_id, stream.metadata)
            decoder = self._streams[stream] = StreamDecoder(self._resolver, reporter, self.limits)
        return decoder.decode(message, received_at)


class StreamDecoder:
    """Decodes the messages of one stream, whose reporting sidecar is known."""

    def __init__(self, resolver: IdentityResolver, reporter: Workload, limits: EntryLimits) -> None:
        self._resolver = resolver
        self._limits = limits
        self._ends: dict[tuple[Any, ...], Ends] = {}
        self._forget_ends()
        self._generation = resolver.generation
        self._statuses: dict[bytes, int] = {b"": 0}
        self._flags: dict[bytes, str] = {b"": ""}
        self.reporter = reporter

    def decode(self, message: Any, received_at: float) -> DecodeResult:
        """Decode one message: a native ``Message`` through the extension's loop, a
        ``lite.LiteStream`` through the upb loops below (the fallback, and the oracle)."""
        reporter = self.reporter
        if self._generation != self._resolver.generation:
            self._generation = self._resolver.generation
            self._forget_ends()
        if is_native(message):
            result = DecodeResult(kind=KINDS[message.kind], entries=message.count)
            if message.kind:
                assert native is not None
                native.decode(message, self, result, received_at)
            return result
        kind = message.WhichOneof("log_entries")
        if kind == "http_logs":
            entries, decode = message.http_logs.log_entry, self._decode_http
        elif kind == "tcp_logs":
            entries, decode = message.tcp_logs.log_entry, self._decode_tcp
        else:
            return DecodeResult()
        result = DecodeResult(kind="http" if kind == "http_logs" else "tcp", entries=len(entries))
        try:
            decode(entries, reporter, result, received_at)
        except _ENTRY_ERRORS:
            # A malformed sub-field is only found when it is read. Decode entry by entry
            # instead: the good entries are kept, the bad ones counted (the slow path runs
            # only for such messages).
            result = DecodeResult(kind=result.kind, entries=len(entries))
            for one in entries:
                try:
                    decode((one,), reporter, result, received_at)
                except _ENTRY_ERRORS as exc:
                    result.malformed += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        return result

    def _forget_ends(self) -> None:
        """Drop every resolved ends (an identity handed out earlier changed): the dict, and the
        native loop's identity-keyed table in front of it (``EndsCache``)."""
        self._ends.clear()
        self._front = native.EndsCache() if native is not None else None

    # The two loops below are the ingest hot path, and share their first lines on purpose (a
    # helper call per entry would cost more than the whole cache lookup): every attribute read on a upb message costs
    # ~60 ns and every nested message ~100 ns more, so each field is read once.

    def _decode_http(
        self, entries: Any, reporter: Workload, result: DecodeResult, received: float
    ) -> None:
        append = result.calls.append
        limits = self._limits
        earliest, latest = received - limits.max_age, received + limits.max_future
        max_field = limits.max_field
        cache = self._ends
        statuses = self._statuses
        flag_codes = self._flags
        host = self._resolver.host
        http = Protocol.HTTP
        for entry in entries:
            common = entry.common_properties
            fs = common.filter_state_objects
            tags = common.custom_tags
            key = (
                common.upstream_cluster,
                common.tls_properties,
                tuple(fs) if fs else None,
                tuple(tags) if tags else None,
            )
            ends = cache.get(key)
            if ends is None:
                ends = self._resolve(key, reporter)
            if ends is _DUPLICATE:
                result.duplicates += 1
                continue
            request = entry.request
            response = entry.response
            authority = request.authority
            if len(authority) > max_field:
                authority = authority[:max_field]
                result.truncated += 1
            path = request.path
            if len(path) > max_field:
                path = path[:max_field]
                result.truncated += 1
            destination = ends.destination
            if destination is None:
                destination = host(authority) if authority else UNKNOWN
            port = ends.port
            if port < 0:
                port = self._entry_port(common, port)
            code = response.response_code
            status = statuses.get(code)
            if status is None:
                status = self._status(code)
            raw_flags = common.response_flags
            flags = flag_codes.get(raw_flags)
            if flags is None:
                flags = self._flag_codes(raw_flags)
            latency = common.time_to_last_downstream_tx_byte
            start = common.start_time
            t = start.seconds + start.nanos * 1e-9
            if not earliest <= t <= latest:
                t = received
                result.retimed += 1
            method = request.request_method
            append(
                _new_call(
                    Call,
                    (
                        t,
                        ends.source,
                        destination,
                        port,
                        http,
                        _METHODS[method] if 0 <= method < 10 else "OTHER",
                        path,
                        status,
                        request.request_body_bytes,
                        response.response_body_bytes,
                        latency.seconds * 1e3 + latency.nanos * 1e-6,
                        flags,
                        ends.side,
                        authority,
                    ),
                )
            )

    def _decode_tcp(
        self, entries: Any, reporter: Workload, result: DecodeResult, received: float
    ) -> None:
        append = result.calls.append
        earliest = received - self._limits.max_age
        latest = received + self._limits.max_future
        cache = self._ends
        for entry in entries:
            common = entry.common_properties
            if common.intermediate_log_entry:
                # Periodic TCP entries carry cumulative byte counts; the connection is counted
                # once, by its final entry, so its bytes are never added twice.
                result.intermediate += 1
                continue
            fs = common.filter_state_objects
            tags = common.custom_tags
            key = (
                common.upstream_cluster,
                common.tls_properties,
                tuple(fs) if fs else None,
                tuple(tags) if tags else None,
            )
            ends = cache.get(key)
            if ends is None:
                ends = self._resolve(key, reporter)
            if ends is _DUPLICATE:
                result.duplicates += 1
                continue
            destination = ends.destination
            if destination is None:
                destination, cut = self._sni_destination(tags)
                result.truncated += cut
            port = ends.port
            if port < 0:
                port = self._entry_port(common, port)
            connection = entry.connection_properties
            raw_flags = common.response_flags
            flags = self._flags.get(raw_flags)
            if flags is None:
                flags = self._flag_codes(raw_flags)
            duration = common.duration
            start = common.start_time
            t = start.seconds + start.nanos * 1e-9
            if not earliest <= t <= latest:
                t = received
                result.retimed += 1
            append(
                _new_call(
                    Call,
                    (
                        t,
                        ends.source,
                        destination,
                        port,
                        Protocol.TCP,
                        "",
                        "",
                        0,
                        connection.received_bytes,
                        connection.sent_bytes,
                        duration.seconds * 1e3 + duration.nanos * 1e-6,
                        flags,
                        ends.side,
                        "",
                    ),
                )
            )

    def _resolve(self, key: tuple[Any, ...], reporter: Workload) -> Ends:
        """Slow path, once per distinct (cluster, TLS, filter state, tags): who called whom."""
        cluster, raw_tls, raw_fs, raw_tags = key
        ref = parse_cluster(cluster)
        tls = accesslog_pb2.TLSProperties.FromString(raw_tls) if raw_tls else None
        sans = tls.peer_certificate_properties.subject_alt_name if tls is not None else ()
        principal = sans[0].uri if sans else ""
        filter_state = _pairs(raw_fs, AnyPair) if raw_fs else {}
        if ref.direction is Direction.INBOUND or (ref.direction is Direction.UNKNOWN and principal):
            peer = _peer(filter_state, DOWNSTREAM_PEER_KEYS)
            source = (
                self._resolver.peer(peer, principal) if peer else self._resolver.caller(principal)
            )
            ends = Ends(source, reporter, ref.port or _PORT_FROM_DOWNSTREAM, Reporter.SERVER)
        else:
            tags = _pairs(raw_tags, StringPair) if raw_tags else {}
            if tags.get(UPSTREAM_SAN_TAG, "-") not in ("-", "") or _peer(
                filter_state, UPSTREAM_PEER_KEYS
            ):
                ends = _DUPLICATE
            else:
                destination = self._resolver.host(ref.host) if ref.host else None
                ends = Ends(reporter, destination, ref.port or _PORT_FROM_UPSTREAM, Reporter.CLIENT)
        if len(self._ends) >= _MAX_CACHE:
            self._ends.clear()  # bounded: per-connection TLS session ids keep arriving
        self._ends[key] = ends
        return ends

    @classmethod
    def _entry_port(cls, common: Any, which: int) -> int:
        """The port of a (view-type) entry's local or upstream address, by ``which``."""
        return cls._port_at(
            common.downstream_local_address
            if which == _PORT_FROM_DOWNSTREAM
            else common.upstream_remote_address
        )

    @staticmethod
    def _port_at(raw: bytes) -> int:
        """The port of a raw ``Address`` (0 when absent): for clusters without one."""
        return _address_port(raw) if raw else 0

    def _sni_destination(self, tags: Any) -> tuple[Workload, int]:
        """A TCP call's destination from its SNI tag (``UNKNOWN`` without one), and 1 when
        the SNI was cut to the field limit."""
        sni = _pairs(tags, StringPair).get(SNI_TAG, "-") if tags else "-"
        cut = 0
        if len(sni) > self._limits.max_field:
            sni = sni[: self._limits.max_field]
            cut = 1
        return (self._resolver.host(sni) if sni != "-" else UNKNOWN), cut

    def _status(self, raw: bytes) -> int:
        status: int = wrappers_pb2.UInt32Value.FromString(raw).value
        if len(self._statuses) < 1024:
            self._statuses[raw] = status
        return status

    def _flag_codes(self, raw: bytes) -> str:
        codes = short_codes(accesslog_pb2.ResponseFlags.FromString(raw))
        if len(self._flags) < 1024:
            self._flags[raw] = codes
        return codes


if native is not None:
    native.bind(
        Call,
        Ends,
        Protocol.HTTP,
        Protocol.TCP,
        _DUPLICATE,
        UNKNOWN,
        _ENTRY_ERRORS,
        _PORT_FROM_DOWNSTREAM,
    )
