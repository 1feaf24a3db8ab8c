"""Realistic pre-serialized ALS messages: server-side Istio HTTP entries of about 700 bytes."""

from __future__ import annotations

import random

from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import struct_pb2

USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "grpc-java-netty/1.68.1",
)
PATHS = (
    "/api/v1/products/{id}",
    "/api/v1/products/{id}/reviews",
    "/reviews/{id}",
    "/ratings/{id}",
    "/details/{id}",
    "/productpage",
    "/healthz",
    "/api/v2/orders/{id}/items?limit=20&offset={id}",
)


def identifier(reporter_index: int) -> als_pb2.StreamAccessLogsMessage.Identifier:
    """An Istio-like node identity of a reporting sidecar."""
    ident = als_pb2.StreamAccessLogsMessage.Identifier(log_name="envoy_als")
    app = f"svc{reporter_index}"
    node = ident.node
    # The pod IP is loopback: the driver streams from there, and meshwatch binds a stream's
    # claimed node to the address it comes from.
    node.id = f"sidecar~127.0.0.1~{app}-v1-5d9f8b7c4-abcde.shop~shop.svc.cluster.local"
    node.cluster = f"{app}.shop"
    meta = node.metadata
    meta.update(
        {
            "NAMESPACE": "shop",
            "WORKLOAD_NAME": f"{app}-v1",
            "SERVICE_ACCOUNT": app,
            "CLUSTER_ID": "Kubernetes",
            "ISTIO_VERSION": "1.24.2",
            "LABELS": struct_pb2.Struct(),
        }
    )
    meta["LABELS"].update({"app": app, "version": "v1", "pod-template-hash": "5d9f8b7c4"})
    return ident


def http_entry(rng: random.Random, caller: int, t: float) -> accesslog_pb2.HTTPAccessLogEntry:
    """One server-side entry, as an Istio sidecar logs an inbound request."""
    e = accesslog_pb2.HTTPAccessLogEntry()
    c = e.common_properties
    c.downstream_remote_address.socket_address.address = f"10.2.{caller // 250}.{caller % 250}"
    c.downstream_remote_address.socket_address.port_value = rng.randint(30000, 60000)
    c.downstream_local_address.socket_address.address = "10.1.0.5"
    c.downstream_local_address.socket_address.port_value = 9080
    c.downstream_direct_remote_address.CopyFrom(c.downstream_remote_address)
    c.upstream_remote_address.socket_address.address = "10.1.0.5"
    c.upstream_remote_address.socket_address.port_value = 9080
    c.upstream_local_address.socket_address.address = "127.0.0.6"
    c.upstream_local_address.socket_address.port_value = rng.randint(30000, 60000)
    c.upstream_cluster = "inbound|9080||"
    c.route_name = "default"
    c.start_time.seconds = int(t)
    c.start_time.nanos = rng.randint(0, 999_999_999)
    c.time_to_last_rx_byte.nanos = rng.randint(1000, 90000)
    c.time_to_first_upstream_tx_byte.nanos = rng.randint(100_000, 300_000)
    c.time_to_last_upstream_tx_byte.nanos = c.time_to_first_upstream_tx_byte.nanos + 1000
    c.time_to_first_upstream_rx_byte.nanos = rng.randint(1_000_000, 30_000_000)
    c.time_to_last_upstream_rx_byte.nanos = c.time_to_first_upstream_rx_byte.nanos + 5000
    c.time_to_first_downstream_tx_byte.nanos = c.time_to_first_upstream_rx_byte.nanos + 2000
    c.time_to_last_downstream_tx_byte.nanos = c.time_to_last_upstream_rx_byte.nanos + 9000
    tls = c.tls_properties
    tls.tls_version = accesslog_pb2.TLSProperties.TLSv1_3
    tls.tls_cipher_suite.value = 0x1301
    tls.tls_sni_hostname = "outbound_.9080_._.svc.shop.svc.cluster.local"
    tls.peer_certificate_properties.subject_alt_name.add().uri = (
        f"spiffe://cluster.local/ns/shop/sa/client{caller}"
    )
    tls.local_certificate_properties.subject_alt_name.add().uri = (
        "spiffe://cluster.local/ns/shop/sa/svc"
    )
    c.upstream_request_attempt_count = 1
    c.downstream_wire_bytes_received = rng.randint(300, 2000)
    c.downstream_wire_bytes_sent = rng.randint(300, 20000)
    r = e.request
    r.request_method = rng.choice((1, 1, 1, 3, 4))
    r.scheme = "http"
    r.authority = "svc.shop.svc.cluster.local:9080"
    r.path = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 100_000)))
    r.user_agent = rng.choice(USER_AGENTS)
    r.request_id = f"{rng.getrandbits(128):032x}"
    r.forwarded_for = c.downstream_remote_address.socket_address.address
    trace = f"{rng.getrandbits(128):032x}"
    r.request_headers["x-b3-traceid"] = trace
    r.request_headers["traceparent"] = f"00-{trace}-{rng.getrandbits(64):016x}-01"
    r.request_headers["x-envoy-attempt-count"] = "1"
    r.request_headers_bytes = rng.randint(300, 900)
    r.request_body_bytes = rng.choice((0, 0, 120, 2048))
    s = e.response
    s.response_code.value = rng.choices((200, 201, 404, 503), weights=(90, 5, 4, 1))[0]
    s.response_headers_bytes = rng.randint(100, 300)
    s.response_body_bytes = rng.randint(100, 20000)
    s.response_code_details = "via_upstream"
    e.protocol_version = accesslog_pb2.HTTPAccessLogEntry.HTTP11
    return e


def http_messages(
    n_messages: int, batch: int, callers: int, reporter: int, t0: float, seed: int = 7
) -> list[bytes]:
    """Serialized messages (no identifier: continuation messages of a stream)."""
    rng = random.Random(seed + reporter)
    out = []
    for i in range(n_messages):
        message = als_pb2.StreamAccessLogsMessage()
        entries = message.http_logs.log_entry
        for _ in range(batch):
            entries.append(http_entry(rng, rng.randrange(callers), t0 + i * 0.01))
        out.append(message.SerializeToString())
    return out


def first_message(reporter: int) -> bytes:
    """The identifying first message of a stream (no entries)."""
    data: bytes = als_pb2.StreamAccessLogsMessage(
        identifier=identifier(reporter)
    ).SerializeToString()
    return data
