"""Decoding of real upb ALS messages built in the test (the Envoy path is covered end to end
in tests/integration; these pin the Istio variants plain Envoy cannot produce)."""

from __future__ import annotations

import time

import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import struct_pb2, wrappers_pb2

from meshwatch.calls import Protocol, Reporter
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

NODE = "sidecar~10.0.0.5~reviews-v1-abc.default~default.svc.cluster.local"


def identify(
    msg: als_pb2.StreamAccessLogsMessage, app: str = "reviews", sa: str = "bookinfo-reviews"
) -> None:
    msg.identifier.log_name = "envoy_als"
    msg.identifier.node.id = NODE.replace("reviews", app)
    msg.identifier.node.metadata.update(
        {"NAMESPACE": "default", "WORKLOAD_NAME": f"{app}-v1", "SERVICE_ACCOUNT": sa}
    )
    msg.identifier.node.metadata.get_or_create_struct("LABELS").update(
        {"app": app, "version": "v1"}
    )


def http(
    msg: als_pb2.StreamAccessLogsMessage,
    cluster: str,
    *,
    san: str = "",
    upstream_san: str = "",
    authority: str = "",
    path: str = "/x",
    status: int = 200,
) -> accesslog_pb2.HTTPAccessLogEntry:
    e = msg.http_logs.log_entry.add()
    c = e.common_properties
    c.upstream_cluster = cluster
    c.start_time.seconds = 1_700_000_000
    c.time_to_last_downstream_tx_byte.nanos = 4_000_000
    if san:
        c.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = san
    if upstream_san:
        c.custom_tags["upstream_peer_san"] = upstream_san
    e.request.request_method = 3
    e.request.path = path
    e.request.authority = authority
    e.request.request_body_bytes = 11
    e.response.response_body_bytes = 222
    e.response.response_code.value = status
    return e


PARSERS = {"upb": lite.parse} | ({"native": wire.native.parse} if wire.native else {})
PARSE = [lite.parse]  # the parser under test, set per test by the fixture below


@pytest.fixture(autouse=True, params=sorted(PARSERS))
def parser(request: pytest.FixtureRequest) -> None:
    """Every test here runs with each wire decoder: native and the upb fallback."""
    PARSE[0] = PARSERS[request.param]


class StreamUnderTest:
    """Decodes full messages the way the receiver and the core do: serialized, parsed by
    the wire decoder under test, the stream identified from its first message, then decoded."""

    def __init__(self) -> None:
        self.decoder = Decoder(IdentityResolver("cluster.local", "cluster.local"), EntryLimits())
        self.received_at = time.time()
        self.stream: StreamIdentity | None = None

    def decode(self, message: als_pb2.StreamAccessLogsMessage) -> DecodeResult:
        parsed = PARSE[0](message.SerializeToString())
        if self.stream is None:
            self.stream = read_identifier(parsed.identifier)
        return self.decoder.decode(self.stream, parsed, self.received_at)


def decoder() -> StreamUnderTest:
    return StreamUnderTest()


def test_inbound_entry_names_caller_by_principal_and_callee_by_node() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg)
    http(
        msg,
        "inbound|9080||",
        san="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        status=503,
    )
    (call,) = decoder().decode(msg).calls
    assert call.source.principal == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert call.destination.id == "default/reviews"
    assert call.destination.principal == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert (call.port, call.method, call.status, call.reporter) == (
        9080,
        "POST",
        503,
        Reporter.SERVER,
    )
    assert (call.bytes_sent, call.bytes_received, call.duration_ms) == (11, 222, 4.0)


@pytest.mark.parametrize("key", ["downstream_peer", "wasm.downstream_peer"])
def test_istio_peer_metadata_struct_wins_over_principal(key: str) -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg)
    e = http(msg, "inbound|9080||", san="spiffe://cluster.local/ns/shop/sa/default")
    peer = struct_pb2.Struct()
    peer.update(
        {
            "namespace": "shop",
            "workload": "cart-v2",
            "app": "cart",
            "version": "v2",
            "cluster": "east",
        }
    )
    e.common_properties.filter_state_objects[key].Pack(peer)
    (call,) = decoder().decode(msg).calls
    assert (call.source.id, call.source.version, call.source.cluster_id) == (
        "shop/cart",
        "v2",
        "east",
    )


def test_peer_metadata_as_string_value_is_understood() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg)
    e = http(msg, "inbound|9080||")
    e.common_properties.filter_state_objects["downstream_peer"].Pack(
        wrappers_pb2.StringValue(value="namespace=shop,workload=cart-v1,app=cart,version=v1")
    )
    (call,) = decoder().decode(msg).calls
    assert call.source.id == "shop/cart"


def test_client_side_entry_with_sidecar_upstream_is_a_duplicate() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg, "productpage", "bookinfo-productpage")
    http(
        msg,
        "outbound|9080||reviews.default.svc.cluster.local",
        upstream_san="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
    )
    result = decoder().decode(msg)
    assert (result.calls, result.duplicates) == ([], 1)


def test_calls_leaving_the_mesh_are_external_nodes() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg, "details", "bookinfo-details")
    http(msg, "outbound|443||storage.googleapis.com")
    passthrough = http(msg, "PassthroughCluster", authority="evil.example.com:8080", path="/exfil")
    passthrough.common_properties.upstream_remote_address.socket_address.port_value = 8080
    http(msg, "outbound|9080||legacy.default.svc.cluster.local")  # in mesh, no sidecar
    calls = decoder().decode(msg).calls
    assert [c.destination.id for c in calls] == [
        "external/storage.googleapis.com",
        "external/evil.example.com",
        "default/legacy",
    ]
    assert [c.destination.external for c in calls] == [True, True, False]
    assert calls[0].destination.provider == "gcp:storage"
    assert all(c.reporter is Reporter.CLIENT and c.source.id == "default/details" for c in calls)
    assert [c.port for c in calls] == [443, 8080, 9080]


def test_tcp_final_entries_count_once_and_intermediate_ones_are_skipped() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg, "mongodb", "bookinfo-mongodb")
    for intermediate in (True, True, False):
        e = msg.tcp_logs.log_entry.add()
        e.common_properties.upstream_cluster = "inbound|27017||"
        e.common_properties.intermediate_log_entry = intermediate
        e.common_properties.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
        e.connection_properties.received_bytes = 100
        e.connection_properties.sent_bytes = 4000
    result = decoder().decode(msg)
    (call,) = result.calls
    assert result.intermediate == 2
    assert (call.protocol, call.port, call.bytes_sent, call.bytes_received) == (
        Protocol.TCP,
        27017,
        100,
        4000,
    )


def test_response_flags_become_envoy_short_codes() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    identify(msg, "productpage", "bookinfo-productpage")
    e = http(msg, "outbound|9080||reviews.default.svc.cluster.local", status=503)
    e.common_properties.response_flags.no_healthy_upstream = True
    e.common_properties.response_flags.upstream_retry_limit_exceeded = True
    (call,) = decoder().decode(msg).calls
    assert set(call.response_flags.split(",")) == {"UH", "URX"}


def test_a_stream_must_identify_itself_first() -> None:
    msg = als_pb2.StreamAccessLogsMessage()
    http(msg, "inbound|9080||")
    with pytest.raises(DecodeError):
        decoder().decode(msg)
