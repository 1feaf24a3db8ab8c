"""meshwatch's own wiring: do the sidecars actually stream their access logs to meshwatch?"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context, synthetic
from meshwatch.istio.resources import MESH_CONFIG, Resource, as_list, as_map

ALS_KINDS = ("envoyHttpAls", "envoyTcpAls")
GRPC_PROTOCOLS = ("grpc", "http2", "kubernetes.io/h2c", "grpc-web")


def meshwatch_services(ctx: Context) -> list[Resource]:
    return [
        s
        for s in ctx.for_each("Service")
        if s.name == "meshwatch" or s.labels.get("app.kubernetes.io/name") == "meshwatch"
    ]


def als_providers(ctx: Context) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(provider name, kind, settings) of every ALS extension provider in the mesh config."""
    out = []
    for provider in as_list(ctx.mesh().get("extensionProviders")):
        provider = as_map(provider)
        for kind in ALS_KINDS:
            if kind in provider:
                out.append((str(provider.get("name", "")), kind, as_map(provider[kind])))
    return out


def _targets_meshwatch(service_host: str, services: list[Resource]) -> Resource | bool | None:
    """The meshwatch Service a provider host names; True when it names meshwatch but the
    Service is not in the input; None when it names something else."""
    parts = service_host.split(".")
    for svc in services:
        if parts[0] == svc.name and (len(parts) == 1 or parts[1] == svc.namespace):
            return svc
    return True if parts[0] == "meshwatch" else None


class AlsProviders(Check):
    info = CheckInfo(
        name="meshwatch-als-wiring",
        description="ALS extension providers and a Telemetry resource send access logs to meshwatch's gRPC port.",
        inputs=(MESH_CONFIG, "Telemetry", "Service"),
        codes=("MW0801", "MW0802", "MW0803"),
    )

    def analyze(self, ctx: Context) -> None:
        if not ctx.has_mesh_config():
            return
        services = meshwatch_services(ctx)
        mesh = synthetic("MeshConfig", ctx.root_namespace(), "mesh")
        ours = []
        for name, kind, settings in als_providers(ctx):
            target = _targets_meshwatch(str(settings.get("service", "")), services)
            if target is None:
                continue
            ours.append(name)
            if isinstance(target, Resource):
                self._check_port(ctx, mesh, name, kind, settings, target)
        missing = [
            k
            for k in ALS_KINDS
            if not any(k == kind and n in ours for n, kind, _ in als_providers(ctx))
        ]
        if missing:
            ctx.report("MW0801", mesh, kinds=" and ".join(missing))
        if ours and not any(set(ours) & set(self._enabled(ctx))):
            ctx.report("MW0802", mesh, providers=", ".join(ours))

    @staticmethod
    def _check_port(
        ctx: Context,
        mesh: Resource,
        name: str,
        kind: str,
        settings: Mapping[str, Any],
        service: Resource,
    ) -> None:
        port = settings.get("port")
        why = f"the Service has no port {port}"
        for entry in as_list(service.spec.get("ports")):
            entry = as_map(entry)
            if entry.get("port") == port:
                protocol = str(
                    entry.get("appProtocol") or str(entry.get("name", "")).split("-")[0]
                ).lower()
                if protocol in GRPC_PROTOCOLS:
                    return
                why = f"port {port} is named {entry.get('name', '(unnamed)')!r} without appProtocol grpc"
                break
        ctx.report(
            "MW0803", mesh, provider=name, kind=kind, service=service.ref, port=port, why=why
        )

    @staticmethod
    def _enabled(ctx: Context) -> Iterator[str]:
        for telemetry in ctx.for_each("Telemetry"):
            for logging in as_list(telemetry.spec.get("accessLogging")):
                logging = as_map(logging)
                if logging.get("disabled") is True:
                    continue
                for provider in as_list(logging.get("providers")):
                    yield str(as_map(provider).get("name", ""))


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _has_http2(cluster: Mapping[str, Any]) -> bool:
    return any(
        "http2_protocol_options" in node or "http2ProtocolOptions" in node
        for node in _walk(cluster)
    )


class AlsClusterHttp2(Check):
    info = CheckInfo(
        name="als-cluster-http2",
        description="EnvoyFilter-added gRPC access-log clusters must speak HTTP/2 or every log is lost silently.",
        inputs=("EnvoyFilter",),
        codes=("MW0804",),
    )

    def analyze(self, ctx: Context) -> None:
        filters = ctx.for_each("EnvoyFilter")
        logged_to = {
            str(as_map(node["envoy_grpc"]).get("cluster_name", ""))
            for f in filters
            for node in _walk(f.spec)
            if "envoy_grpc" in node
        }
        for envoy_filter in filters:
            for patch in as_list(envoy_filter.spec.get("configPatches")):
                patch = as_map(patch)
                if str(patch.get("applyTo", "")).upper() != "CLUSTER":
                    continue
                value = as_map(as_map(patch.get("patch")).get("value"))
                name = str(value.get("name", ""))
                if name in logged_to and not _has_http2(value):
                    ctx.report("MW0804", envoy_filter, cluster=name)
