"""Envoy bootstrap documents for one sidecar, shaped like the ones istiod generates.

Cluster names follow Istio (``inbound|port||``, ``outbound|port||fqdn``, ``PassthroughCluster``),
node ids and metadata follow Istio, sidecar-to-sidecar traffic is mutual TLS with SPIFFE URI
SANs, and both the HTTP and the TCP gRPC access loggers stream to meshwatch's ALS cluster,
which speaks HTTP/2 (without it Envoy accepts the config and silently loses every log).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshwatch.localmesh.authz_render import Rendered, http_filter, network_filter
from meshwatch.localmesh.certs import CertFiles
from meshwatch.localmesh.topology import Topology, WorkloadSpec

ALS_CLUSTER = "meshwatch_als"
# Istio's sidecars exchange workload metadata in-band and log it as ``downstream_peer``. Plain
# Envoy has no such filter, so the local mesh carries it in a request header that the client
# sidecar adds and the server sidecar turns into the ``downstream_peer`` filter state.
PEER_HEADER = "x-meshwatch-peer"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class SidecarPorts:
    """Where one sidecar and its app listen."""

    admin: int
    inbound: int
    app: int
    outbound_http: int
    outbound_tcp: dict[str, int]  # TCP service FQDN → local listener port
    inbound_ip: str = LOOPBACK
    """The "pod IP" of the inbound listener. With its own loopback address a sidecar can
    listen on the workload's own port, as a pod does, so Envoy reports the destination port
    Istio would see, even for a request no route served (an RBAC denial)."""


def _address(port: int, ip: str = LOOPBACK) -> dict[str, Any]:
    return {"socket_address": {"address": ip, "port_value": port}}


def _endpoints(
    name: str, ports: list[int], http2: bool = False, ips: list[str] | None = None
) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(p, ip)}}
                        for p, ip in zip(ports, ips or [LOOPBACK] * len(ports), strict=True)
                    ]
                }
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def _tls_context(certs: CertFiles, sans: list[str] | None = None) -> dict[str, Any]:
    validation: dict[str, Any] = {"trusted_ca": {"filename": str(certs.ca)}}
    if sans:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": san}} for san in sans
        ]
    return {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": str(certs.cert)},
                "private_key": {"filename": str(certs.key)},
            }
        ],
        "validation_context": validation,
        "alpn_protocols": ["istio-peer-exchange", "istio"],
    }


def _common_log(log_name: str, flush_seconds: float) -> dict[str, Any]:
    return {
        "log_name": log_name,
        "transport_api_version": "V3",
        "grpc_service": {"envoy_grpc": {"cluster_name": ALS_CLUSTER}},
        "buffer_flush_interval": f"{flush_seconds}s",
        "filter_state_objects_to_log": ["downstream_peer", "upstream_peer"],
        "custom_tags": [
            {"tag": "upstream_peer_san", "value": "%UPSTREAM_PEER_URI_SAN%"},
            {"tag": "requested_server_name", "value": "%REQUESTED_SERVER_NAME%"},
        ],
    }


def _http_log(flush_seconds: float) -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.http_grpc",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
                "common_config": _common_log("envoy_als", flush_seconds),
            },
        }
    ]


def _tcp_log(flush_seconds: float) -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.tcp_grpc",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig",
                "common_config": _common_log("envoy_tcp_als", flush_seconds),
            },
        }
    ]


def _peer_value(spec: WorkloadSpec) -> str:
    return (
        f"namespace={spec.namespace},workload={spec.name},app={spec.app},version={spec.version},"
        f"service_account={spec.sa},cluster=Kubernetes"
    )


def _set_downstream_peer() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [
                {
                    "object_key": "downstream_peer",
                    "factory_key": "envoy.string",
                    "format_string": {
                        "text_format_source": {"inline_string": f"%REQ({PEER_HEADER})%"}
                    },
                    "skip_if_empty": True,
                }
            ],
        },
    }


def _hcm(
    stat_prefix: str,
    virtual_hosts: list[dict[str, Any]],
    flush_seconds: float,
    route_extras: dict[str, Any] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "route_config": {
                "name": stat_prefix,
                "virtual_hosts": virtual_hosts,
                **(route_extras or {}),
            },
            "http_filters": [
                *(filters or []),
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                },
            ],
            "access_log": _http_log(flush_seconds),
        },
    }


def _tcp_proxy(stat_prefix: str, cluster: str, flush_seconds: float) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": stat_prefix,
            "cluster": cluster,
            "access_log": _tcp_log(flush_seconds),
        },
    }


def _route(cluster: str) -> dict[str, Any]:
    return {"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "5s"}}


def _service_domains(spec: WorkloadSpec) -> list[str]:
    names = [
        spec.app,
        f"{spec.app}.{spec.namespace}",
        f"{spec.app}.{spec.namespace}.svc",
        spec.service_host,
    ]
    return names + [f"{n}:{spec.port}" for n in names]


def inbound_listener(
    spec: WorkloadSpec,
    mine: SidecarPorts,
    own: CertFiles,
    flush_seconds: float,
    rbac: Rendered | None,
) -> dict[str, Any]:
    """The sidecar's inbound (mTLS) listener, with the RBAC filter istiod would render from
    the AuthorizationPolicies that apply to it (``None``: no RBAC filter at all)."""
    inbound_cluster = f"inbound|{spec.port}||"
    if spec.protocol == "tcp":
        filters = [_tcp_proxy("inbound_tcp", inbound_cluster, flush_seconds)]
        if rbac is not None:
            filters.insert(0, network_filter(rbac))
    else:
        vhosts = [{"name": "inbound", "domains": ["*"], "routes": [_route(inbound_cluster)]}]
        http_filters = [_set_downstream_peer()]
        if rbac is not None:
            http_filters.append(http_filter(rbac))
        filters = [
            _hcm(
                "inbound_http",
                vhosts,
                flush_seconds,
                route_extras={"request_headers_to_remove": [PEER_HEADER]},
                filters=http_filters,
            )
        ]
    return {
        "name": "virtualInbound",
        "address": _address(mine.inbound, mine.inbound_ip),
        "filter_chains": [
            {
                "filters": filters,
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": _tls_context(own),
                    },
                },
            }
        ],
    }


LDS_FILE = "listeners.json"
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


def lds_document(listener: dict[str, Any], version: str) -> dict[str, Any]:
    """A ``DiscoveryResponse`` holding the inbound listener, as Envoy reads it from a file."""
    return {"version_info": version, "resources": [{"@type": LISTENER_TYPE, **listener}]}


def sidecar_bootstrap(
    spec: WorkloadSpec,
    topology: Topology,
    ports: dict[str, SidecarPorts],
    certs: dict[str, CertFiles],
    external_port: int,
    als_port: int,
    flush_seconds: float,
    trust_domain: str = "cluster.local",
    lds_dir: Path | None = None,
) -> dict[str, Any]:
    """The bootstrap of ``spec``'s sidecar. ``ports``/``certs`` are keyed by workload name.

    With ``lds_dir`` the inbound listener comes from ``lds_dir/listeners.json`` (Envoy's
    file-based LDS, watched: a file moved into the directory replaces it), which is how the
    local control plane delivers AuthorizationPolicies as RBAC config."""
    mine = ports[spec.name]
    listeners: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = [_endpoints(ALS_CLUSTER, [als_port], http2=True)]
    own = certs[spec.name]

    if spec.serves:
        inbound_cluster = f"inbound|{spec.port}||"
        clusters.append(_endpoints(inbound_cluster, [mine.app]))
        if lds_dir is None:
            listeners.append(inbound_listener(spec, mine, own, flush_seconds, None))
    virtual_hosts: list[dict[str, Any]] = []
    for host, backends in sorted(topology.services().items()):
        first = backends[0]
        cluster_name = f"outbound|{first.port}||{host}"
        sans = sorted({f"spiffe://{trust_domain}/ns/{b.namespace}/sa/{b.sa}" for b in backends})
        cluster = _endpoints(
            cluster_name,
            [ports[b.name].inbound for b in backends],
            ips=[ports[b.name].inbound_ip for b in backends],
        )
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": f"outbound_.{first.port}_._.{host}",
                "common_tls_context": _tls_context(own, sans),
            },
        }
        clusters.append(cluster)
        if first.protocol == "tcp":
            listeners.append(
                {
                    "name": f"outbound_tcp_{first.app}",
                    "address": _address(mine.outbound_tcp[host]),
                    "filter_chains": [
                        {"filters": [_tcp_proxy("outbound_tcp", cluster_name, flush_seconds)]}
                    ],
                }
            )
        else:
            virtual_hosts.append(
                {
                    "name": host,
                    "domains": _service_domains(first),
                    "routes": [_route(cluster_name)],
                    # only toward the mesh: workload metadata must not leak to external hosts
                    "request_headers_to_add": [
                        {
                            "header": {"key": PEER_HEADER, "value": _peer_value(spec)},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                        }
                    ],
                }
            )

    for ext in topology.externals:
        if not ext.declared:
            continue
        ext_cluster = f"outbound|{ext.port}||{ext.host}"
        clusters.append(_endpoints(ext_cluster, [external_port]))
        virtual_hosts.append(
            {
                "name": ext.host,
                "domains": [ext.host, f"{ext.host}:{ext.port}"],
                "routes": [_route(ext_cluster)],
            }
        )
    clusters.append(_endpoints("PassthroughCluster", [external_port]))
    virtual_hosts.append(
        {"name": "allow_any", "domains": ["*"], "routes": [_route("PassthroughCluster")]}
    )
    listeners.append(
        {
            "name": "virtualOutbound",
            "address": _address(mine.outbound_http),
            "filter_chains": [{"filters": [_hcm("outbound_http", virtual_hosts, flush_seconds)]}],
        }
    )

    return {
        "node": {
            "id": f"sidecar~{LOOPBACK}~{spec.pod}.{spec.namespace}~{spec.namespace}.svc.cluster.local",
            "cluster": f"{spec.app}.{spec.namespace}",
            "metadata": {
                "NAMESPACE": spec.namespace,
                "WORKLOAD_NAME": spec.name,
                "NAME": spec.pod,
                "SERVICE_ACCOUNT": spec.sa,
                "CLUSTER_ID": "Kubernetes",
                "MESH_ID": trust_domain,
                "ISTIO_VERSION": "1.24.0",
                "LABELS": {
                    "app": spec.app,
                    "version": spec.version,
                    "service.istio.io/canonical-name": spec.app,
                    "service.istio.io/canonical-revision": spec.version,
                },
            },
        },
        "admin": {"address": _address(mine.admin)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        **(
            {
                "dynamic_resources": {
                    "lds_config": {
                        "resource_api_version": "V3",
                        "path_config_source": {
                            "path": str(lds_dir / LDS_FILE),
                            "watched_directory": {"path": str(lds_dir)},
                        },
                    }
                }
            }
            if lds_dir is not None and spec.serves
            else {}
        ),
    }
