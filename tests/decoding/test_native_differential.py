"""The native extractor against upb, the oracle: for every message, both refuse it with
``DecodeError``, or both accept it and give identical calls and counts.

The corpus: entries of every kind meshwatch reads (inbound, outbound, duplicates, TCP with and
without SNI, intermediate TCP entries, passthrough ports, peer metadata, response flags,
hostile times and lengths, malformed sub-fields), Hypothesis strategies over the wire format
of the schema (known fields with right and wrong wire types, unknown fields of every wire
type, groups, repeated singular fields, oneof switches), random bytes, and mutations of real
messages. ``test_envoy_differential`` adds messages captured from real Envoy sidecars.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import struct_pb2, wrappers_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.bench.entries import first_message, http_messages
from meshwatch.decoding import lite, wire
from meshwatch.decoding.streams import (
    Decoder,
    DecodeResult,
    EntryLimits,
    StreamIdentity,
    read_identifier,
)
from meshwatch.errors import DecodeError
from meshwatch.identity.resolving import IdentityResolver
from tests.als_streams import entry, message

native = wire.native
if native is None:
    pytestmark = pytest.mark.skipif(
        not os.environ.get("CI"), reason="the native extractor is not built here"
    )

RECEIVED = 1_796_000_000.0
SHORT_FIELDS = EntryLimits(max_field=64)  # so the corpus's long paths and hosts get cut
FIRST = first_message(3)
IDENTITY = read_identifier(lite.parse(FIRST).identifier)
# Fuzzing budget: `make fuzz` raises it (MESHWATCH_FUZZ_EXAMPLES) for the long run.
EXAMPLES = int(os.environ.get("MESHWATCH_FUZZ_EXAMPLES", "300"))


def outcome(
    parse: Callable[[bytes], Any],
    raws: list[bytes],
    identity: StreamIdentity = IDENTITY,
    limits: EntryLimits = SHORT_FIELDS,
) -> list[Any]:
    """Per message of one stream: "refused", or every field of the decode result."""
    decoder = Decoder(IdentityResolver("cluster.local", "cluster.local"), limits)
    out: list[Any] = []
    for raw in raws:
        try:
            parsed = parse(raw)
        except DecodeError:
            out.append("refused")
            continue
        result: DecodeResult = decoder.decode(identity, parsed, RECEIVED)
        out.append(
            (
                result.kind,
                result.entries,
                result.calls,
                result.duplicates,
                result.intermediate,
                result.retimed,
                result.truncated,
                result.malformed,
                result.first_error,
            )
        )
    return out


def assert_same(*raws: bytes) -> list[Any]:
    """Both decoders on one stream (identified by ``FIRST``) of these messages."""
    assert native is not None, "the native extractor must be built (CI builds it)"
    stream = [FIRST, *raws]
    expected = outcome(lite.parse, stream)
    assert outcome(native.parse, stream) == expected
    return expected[1:]


# -- a corpus of the entries meshwatch reads ------------------------------------------------


def _http(msg: als_pb2.StreamAccessLogsMessage, cluster: str, **fields: Any) -> Any:
    e = msg.http_logs.log_entry.add()
    c = e.common_properties
    c.upstream_cluster = cluster
    c.start_time.seconds = int(fields.get("start", RECEIVED))
    c.start_time.nanos = 123_456_789
    c.time_to_last_downstream_tx_byte.nanos = 4_000_000
    if fields.get("san"):
        c.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = fields["san"]
    for key, value in fields.get("tags", {}).items():
        c.custom_tags[key] = value
    e.request.request_method = fields.get("method", 1)
    e.request.path = fields.get("path", "/items/1")
    e.request.authority = fields.get("authority", "")
    e.request.request_body_bytes = 11
    e.response.response_body_bytes = 222
    e.response.response_code.value = fields.get("status", 200)
    return e


def corpus() -> list[bytes]:
    rng = random.Random(5)
    out = [message(None, [entry(rng, c, RECEIVED + c) for c in range(12)])]
    out += http_messages(3, 25, 7, 3, RECEIVED)
    m = als_pb2.StreamAccessLogsMessage()
    _http(m, "inbound|9080||", san="spiffe://cluster.local/ns/shop/sa/web", status=503)
    _http(m, "outbound|80||api.stripe.com", authority="api.stripe.com", method=3)
    _http(m, "PassthroughCluster", authority="exfil.example.net:8443", method=4)
    _http(m, "outbound|9080||reviews.shop.svc.cluster.local", tags={"upstream_peer_san": "x"})
    _http(m, "inbound|9080||", path="/" + "p" * 200, authority="h" * 100, method=42)
    _http(m, "inbound|9080||", start=RECEIVED + 86_400 * 3, method=-1)
    _http(m, "BlackHoleCluster", authority="", path="")
    e = _http(m, "inbound|9080||")
    e.common_properties.response_flags.no_route_found = True
    e.common_properties.response_flags.upstream_request_timeout = True
    e.common_properties.downstream_local_address.socket_address.port_value = 15006
    peer = struct_pb2.Struct()
    peer.update({"namespace": "shop", "workload": "cart-v1", "app": "cart", "version": "v1"})
    _http(m, "inbound|9080||").common_properties.filter_state_objects["downstream_peer"].Pack(peer)
    _http(m, "inbound|8080||").common_properties.filter_state_objects["downstream_peer"].Pack(
        wrappers_pb2.StringValue(value="namespace=shop,workload=api-v1,app=api")
    )
    out.append(m.SerializeToString())
    t = als_pb2.StreamAccessLogsMessage()
    for i, (cluster, sni) in enumerate(
        [
            ("inbound|9000||", ""),
            ("outbound|443||db.example.com", ""),
            ("PassthroughCluster", "secret.example.org"),
            ("PassthroughCluster", "s" * 100),
            ("PassthroughCluster", ""),
        ]
    ):
        e = t.tcp_logs.log_entry.add()
        c = e.common_properties
        c.upstream_cluster = cluster
        c.start_time.seconds = int(RECEIVED) - i
        c.duration.seconds = 2
        c.upstream_remote_address.socket_address.port_value = 5432
        if sni:
            c.custom_tags["requested_server_name"] = sni
        c.intermediate_log_entry = i == 1
        e.connection_properties.received_bytes = 1234 + i
        e.connection_properties.sent_bytes = 4321
    out.append(t.SerializeToString())
    # malformed sub-fields: only their entry is lost (counted), on both paths
    bad = als_pb2.StreamAccessLogsMessage()
    _http(bad, "inbound|9080||")
    raw_bad = bad.SerializeToString()
    good_entry = als_pb2.StreamAccessLogsMessage()
    _http(good_entry, "inbound|9080||", path="/ok")
    out.append(_with_raw_tls(raw_bad, b"\x0a\x05\xff") + good_entry.SerializeToString())
    return out


def _with_raw_tls(raw: bytes, tls: bytes) -> bytes:
    """A message of one HTTP entry whose tls_properties are these raw bytes."""
    m = als_pb2.StreamAccessLogsMessage.FromString(raw)
    common = m.http_logs.log_entry[0].common_properties.SerializeToString()
    common += b"\x22" + bytes([len(tls)]) + tls  # field 4 (tls_properties), appended
    entry_bytes = b"\x0a" + _varint(len(common)) + common
    logs = b"\x0a" + _varint(len(entry_bytes)) + entry_bytes
    return b"\x12" + _varint(len(logs)) + logs


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_the_corpus_decodes_identically() -> None:
    results = assert_same(*corpus())
    assert all(r != "refused" for r in results)
    calls = [c for r in results for c in r[2]]
    assert len(calls) > 50
    assert {c.protocol for c in calls} == {"http", "tcp"}
    assert sum(r[6] for r in results) > 0 and sum(r[5] for r in results) > 0  # cut, retimed
    assert sum(r[7] for r in results) == 1  # the malformed TLS entry, alone


def test_oneof_switches_merges_and_last_values_as_upb() -> None:
    empty = b"\x0a\x00"
    http = b"\x12" + bytes([len(empty)]) + empty
    tcp = b"\x1a" + bytes([len(empty)]) + empty
    ident = b"\x0a\x02ab\x0a\x01c"
    results = assert_same(http + http, http + tcp, http + tcp + http, tcp + http + http, ident)
    assert [r[1] for r in results] == [2, 1, 1, 2, 0]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("end group at top level", b"\x0c"),
        ("unterminated group", b"\x2b"),
        ("mismatched group", b"\x2b\x34"),
        ("field number 0", b"\x00\x01"),
        ("wire type 6", b"\x0e"),
        ("wire type 7", b"\x0f"),
        ("varint of 11 bytes", b"\x28" + b"\xff" * 10 + b"\x01"),
        ("truncated varint", b"\x28\xff"),
        ("truncated fixed64", b"\x29\x00\x00"),
        ("truncated fixed32", b"\x2d\x00"),
        ("length beyond the end", b"\x2a\x05ab"),
        ("tag over 32 bits", b"\x80\x80\x80\x80\x20\x01"),
        ("tag of 6 bytes", b"\x88\x80\x80\x80\x80\x00\x01"),
        ("groups 100 deep", b"\x2b" * 100 + b"\x2c" * 100),
        ("groups 101 deep", b"\x2b" * 101 + b"\x2c" * 101),
        ("10-byte varint", b"\x28" + b"\xff" * 9 + b"\x01"),
        ("non-canonical tag", b"\x88\x00\x01"),
        ("identifier as a varint", b"\x08\x05"),
        ("http_logs as a varint", b"\x10\x05"),
    ],
)
def test_wire_edge_cases_are_judged_as_upb_judges_them(name: str, raw: bytes) -> None:
    assert_same(raw)


def _nested(depth_inside_entry: int) -> bytes:
    groups = b"\x4b" * depth_inside_entry + b"\x4c" * depth_inside_entry
    log_entry = b"\x0a" + _varint(len(groups)) + groups
    return b"\x12" + _varint(len(log_entry)) + log_entry


@pytest.mark.parametrize("depth", [97, 98, 99, 150])
def test_the_depth_limit_counts_messages_and_groups_as_upb(depth: int) -> None:
    assert_same(_nested(depth))


def test_bad_utf8_in_a_string_field_refuses_the_message() -> None:
    request = b"\x2a\x02\xff\xfe"  # path (5) with invalid UTF-8
    log_entry = b"\x1a" + bytes([len(request)]) + request
    logs = b"\x0a" + bytes([len(log_entry)]) + log_entry
    assert assert_same(b"\x12" + bytes([len(logs)]) + logs) == ["refused"]


# -- fuzzing ---------------------------------------------------------------------------------

# The schema as the view declares it: per message, field number -> (wire type, what it holds)
_SCHEMA: dict[str, dict[int, tuple[int, str]]] = {
    "stream": {1: (2, "bytes"), 2: (2, "http"), 3: (2, "tcp")},
    "http": {1: (2, "http_entry")},
    "tcp": {1: (2, "tcp_entry")},
    "http_entry": {1: (2, "common"), 3: (2, "request"), 4: (2, "response")},
    "tcp_entry": {1: (2, "common"), 2: (2, "connection")},
    "common": {
        3: (2, "bytes"),
        4: (2, "bytes"),
        5: (2, "time"),
        12: (2, "time"),
        13: (2, "bytes"),
        15: (2, "text"),
        16: (2, "bytes"),
        21: (2, "bytes"),
        22: (2, "bytes"),
        23: (2, "time"),
        27: (0, "varint"),
    },
    "request": {
        1: (0, "varint"),
        3: (2, "text"),
        4: (2, "bytes"),
        5: (2, "text"),
        12: (0, "varint"),
    },
    "response": {1: (2, "bytes"), 3: (0, "varint")},
    "connection": {1: (0, "varint"), 2: (0, "varint")},
    "time": {1: (0, "varint"), 2: (0, "varint")},
}
_TEXTS = st.one_of(
    st.text(max_size=12).map(lambda s: s.encode()),
    st.binary(max_size=6),  # often not UTF-8
    st.sampled_from([b"inbound|9080||", b"outbound|80||api.stripe.com", b"PassthroughCluster"]),
)
_VARINTS = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**31, 2**63, 2**64 - 1]))


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire_type) + payload


@st.composite
def _message(draw: Any, kind: str, depth: int = 0) -> bytes:
    """A message of ``kind``: its fields in any order and number, right or wrong wire types,
    and unknown fields of every wire type, groups included."""
    parts: list[bytes] = []
    schema = _SCHEMA[kind]
    for _ in range(draw(st.integers(0, 4 if depth < 3 else 2))):
        number = draw(st.sampled_from(sorted(schema)) | st.integers(1, 40))
        wire_type, holds = schema.get(number, (draw(st.sampled_from([0, 1, 2, 3, 5])), "unknown"))
        if draw(st.integers(0, 9)) == 0:
            wire_type = draw(st.sampled_from([0, 1, 2, 5]))  # the wrong wire type
            holds = "unknown"
        if wire_type == 0:
            payload = _varint(draw(_VARINTS))
        elif wire_type == 1:
            payload = draw(st.binary(min_size=8, max_size=8))
        elif wire_type == 5:
            payload = draw(st.binary(min_size=4, max_size=4))
        elif wire_type == 3:
            inner = draw(_message("time", depth + 1)) if depth < 4 else b""
            parts.append(_field(number, 3, inner) + _varint(number << 3 | 4))
            continue
        elif holds in _SCHEMA and depth < 5:
            body = draw(_message(holds, depth + 1))
            payload = _varint(len(body)) + body
        elif holds == "text":
            body = draw(_TEXTS)
            payload = _varint(len(body)) + body
        else:
            body = draw(st.binary(max_size=8))
            payload = _varint(len(body)) + body
        parts.append(_field(number, wire_type, payload))
    return b"".join(parts)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_message("stream"))
def test_generated_wire_messages_agree(raw: bytes) -> None:
    assert_same(raw)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_agree(raw: bytes) -> None:
    assert_same(raw)


_REAL = corpus()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(_REAL) - 1),
    st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 2**20),
    st.booleans(),
)
def test_mutated_real_messages_agree(
    which: int, flips: list[tuple[int, int]], cut: int, truncate: bool
) -> None:
    raw = bytearray(_REAL[which])
    for at, value in flips:
        raw[at % len(raw)] = value
    if truncate:
        raw = raw[: cut % (len(raw) + 1)]
    assert_same(bytes(raw))


def test_entries_timed_now_decode_identically() -> None:
    """Entries stamped at the real clock, received at the fixed one (most are retimed)."""
    results = assert_same(*http_messages(1, 10, 3, 3, time.time()))
    assert results[0][1] == 10


def test_messages_keep_their_entry_fields() -> None:
    """Spot check against the full upb type: the native entry holds what the view holds."""
    assert native is not None
    m = als_pb2.StreamAccessLogsMessage()
    e = _http(m, "inbound|9080||", path="/a", authority="h:1", status=404)
    parsed = native.parse(m.SerializeToString())
    (got,) = parsed.entries
    assert (parsed.kind, got.cluster, got.path, got.authority) == (1, "inbound|9080||", "/a", "h:1")
    assert got.code == e.response.response_code.SerializeToString()
    assert (got.req_bytes, got.resp_bytes, got.method) == (11, 222, 1)


def test_native_calls_hold_no_extra_references() -> None:
    """The native loop builds each Call in place: once the results are dropped, nothing it
    referenced keeps a count it took (a leak here would grow memory with every entry)."""
    import gc
    import sys

    assert native is not None
    decoder = Decoder(IdentityResolver("cluster.local", "cluster.local"), EntryLimits())
    messages = http_messages(3, 50, 5, 3, RECEIVED)
    first = decoder.decode(IDENTITY, native.parse(messages[0]), RECEIVED).calls
    source, destination = first[0].source, first[0].destination
    count = sys.getrefcount(first[0])  # outside the assert: pytest's rewriting holds one
    assert count == 2  # the list's and getrefcount's own
    del first
    gc.collect()
    before = (sys.getrefcount(source), sys.getrefcount(destination))
    for _ in range(20):
        for raw in messages:
            decoder.decode(IDENTITY, native.parse(raw), RECEIVED)
    gc.collect()
    assert (sys.getrefcount(source), sys.getrefcount(destination)) == before


def test_ends_cached_by_identity_give_way_when_a_caller_is_learned() -> None:
    """A caller first known by its certificate alone becomes its app once its own sidecar
    streams; both decoders must drop what they cached for it (the native one keeps a table
    keyed on object identity in front of the dict)."""
    assert native is not None
    m = als_pb2.StreamAccessLogsMessage()
    _http(m, "inbound|9080||", san="spiffe://cluster.local/ns/shop/sa/svc5")
    raw = m.SerializeToString()
    seen = {}
    for name, parse in (("upb", lite.parse), ("native", native.parse)):
        decoder = Decoder(IdentityResolver("cluster.local", "cluster.local"), SHORT_FIELDS)
        before = decoder.decode(IDENTITY, parse(raw), RECEIVED).calls[0].source
        caller = read_identifier(lite.parse(first_message(5)).identifier)
        decoder.decode(caller, parse(first_message(5)), RECEIVED)  # the caller's sidecar speaks
        after = decoder.decode(IDENTITY, parse(raw), RECEIVED).calls[0].source
        seen[name] = (before.id, after.id)
    assert seen["native"] == seen["upb"] == ("shop/sa:svc5", "shop/svc5")


def test_parsed_messages_release_what_they_hold() -> None:
    """A parsed message holds references to the interned values of its entries, in C; once
    it is dropped (or the oneof switches kind part-way) they must all be given back, or every
    entry ingested would leak its strings."""
    import sys

    assert native is not None
    m = als_pb2.StreamAccessLogsMessage()
    peer = struct_pb2.Struct()
    peer.update({"namespace": "shop", "workload": "cart-v1"})
    e = _http(m, "inbound|7070||", san="spiffe://cluster.local/ns/shop/sa/held", authority="held:1")
    e.common_properties.filter_state_objects["downstream_peer"].Pack(peer)
    e.common_properties.custom_tags["tag"] = "value"
    raw = m.SerializeToString()
    tcp = b"\x1a\x02\x0a\x00"  # tcp_logs with one empty entry: the oneof switches
    (first,) = native.parse(raw).entries
    held = [first.cluster, first.tls, first.code, first.authority, *(first.fs or [])]
    held += first.tags or []
    before = [sys.getrefcount(v) for v in held]
    kept = [native.parse(raw) for _ in range(50)] + [native.parse(raw + tcp + raw)]
    assert all(sys.getrefcount(v) >= b + 50 for v, b in zip(held, before, strict=True))
    assert kept[-1].count == 1 and kept[-1].kind == 1
    del kept
    assert [sys.getrefcount(v) for v in held] == before
