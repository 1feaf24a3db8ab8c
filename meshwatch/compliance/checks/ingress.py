"""Ingress: Gateways and VirtualServices exposed more widely or more weakly than intended."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import MESH_CONFIG, Resource, as_list, as_map

WEAK_TLS = frozenset({"TLSV1_0", "TLSV1_1"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


def servers(gateway: Resource) -> Iterator[Mapping[str, Any]]:
    for server in as_list(gateway.spec.get("servers")):
        yield as_map(server)


def _port(server: Mapping[str, Any]) -> str:
    port = as_map(server.get("port"))
    return f"{port.get('number', '?')}/{str(port.get('protocol', '')).upper()}"


def _is_wildcard(host: str) -> bool:
    return host.rpartition("/")[2] == "*"


class GatewayWildcardHosts(Check):
    info = CheckInfo(
        name="gateway-wildcard-host",
        description="Gateway servers accepting any host ('*').",
        inputs=("Gateway",),
        codes=("MW0501",),
    )

    def analyze(self, ctx: Context) -> None:
        for gateway in ctx.for_each("Gateway"):
            for server in servers(gateway):
                wildcards = [str(h) for h in as_list(server.get("hosts")) if _is_wildcard(str(h))]
                if wildcards:
                    ctx.report("MW0501", gateway, port=_port(server), hosts=", ".join(wildcards))


class GatewayTls(Check):
    info = CheckInfo(
        name="gateway-tls",
        description="HTTPS servers without TLS, HTTP servers without httpsRedirect, TLS below 1.2.",
        inputs=("Gateway",),
        codes=("MW0502", "MW0503", "MW0504"),
    )

    def analyze(self, ctx: Context) -> None:
        for gateway in ctx.for_each("Gateway"):
            for server in servers(gateway):
                protocol = str(as_map(server.get("port")).get("protocol", "")).upper()
                tls = as_map(server.get("tls"))
                if protocol in TLS_PROTOCOLS and not tls:
                    ctx.report("MW0502", gateway, port=_port(server))
                elif protocol == "HTTP" and tls.get("httpsRedirect") is not True:
                    ctx.report("MW0503", gateway, port=_port(server))
                version = str(tls.get("minProtocolVersion", "")).upper()
                if version in WEAK_TLS:
                    ctx.report("MW0504", gateway, port=_port(server), version=version)


class GatewayCredential(Check):
    info = CheckInfo(
        name="gateway-credential-exists",
        description="A Gateway credentialName naming a Secret that is not in the input (when Secrets are).",
        inputs=("Gateway", "Secret", MESH_CONFIG),
        codes=("MW0505",),
        related=(
            "IST0161",
            "IST0101",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        if not ctx.exists("Secret"):
            return
        root = ctx.root_namespace()
        for gateway in ctx.for_each("Gateway"):
            for server in servers(gateway):
                name = str(as_map(server.get("tls")).get("credentialName") or "")
                if not name:
                    continue
                if not (
                    ctx.find("Secret", gateway.namespace, name) or ctx.find("Secret", root, name)
                ):
                    ctx.report("MW0505", gateway, secret=name, port=_port(server))


class VirtualServiceWildcardHosts(Check):
    info = CheckInfo(
        name="virtual-service-wildcard-host",
        description="VirtualServices claiming every host ('*').",
        inputs=("VirtualService",),
        codes=("MW0506",),
    )

    def analyze(self, ctx: Context) -> None:
        for service in ctx.for_each("VirtualService"):
            if any(str(h) == "*" for h in as_list(service.spec.get("hosts"))):
                ctx.report("MW0506", service)
