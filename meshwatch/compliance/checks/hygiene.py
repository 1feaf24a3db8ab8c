"""Hygiene: deprecated APIs, EnvoyFilter inventory, default service accounts."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import MESH_CONFIG, SYSTEM_NAMESPACES, WORKLOAD

# (api group, version or "*") → what became of it
_RETIRED = {
    ("rbac.istio.io", "*"): "removed in Istio 1.6; use security.istio.io/v1 AuthorizationPolicy",
    (
        "authentication.istio.io",
        "*",
    ): "removed in Istio 1.6; use PeerAuthentication / RequestAuthentication",
    ("config.istio.io", "*"): "Mixer configuration, removed in Istio 1.8",
    ("security.istio.io", "v1alpha1"): "not served; use security.istio.io/v1",
    ("security.istio.io", "v1beta1"): "deprecated since Istio 1.22; use security.istio.io/v1",
    ("networking.istio.io", "v1alpha3"): "superseded by networking.istio.io/v1 (Istio 1.22)",
}
ISTIO_KINDS = (
    "AuthorizationPolicy",
    "PeerAuthentication",
    "RequestAuthentication",
    "DestinationRule",
    "VirtualService",
    "Gateway",
    "ServiceEntry",
    "Sidecar",
    "EnvoyFilter",
    "Telemetry",
    "WorkloadEntry",
    "ServiceRole",
    "ServiceRoleBinding",
    "ClusterRbacConfig",
    "RbacConfig",
    "Policy",
    "MeshPolicy",
    "rule",
    "handler",
    "instance",
)


class DeprecatedApis(Check):
    info = CheckInfo(
        name="deprecated-istio-apis",
        description="Istio API groups and versions that are deprecated or no longer served.",
        inputs=ISTIO_KINDS,
        codes=("MW0901",),
        related=("IST0002",),
    )

    def analyze(self, ctx: Context) -> None:
        for kind in ISTIO_KINDS:
            for resource in ctx.for_each(kind):
                fate = _RETIRED.get((resource.group, resource.version)) or _RETIRED.get(
                    (resource.group, "*")
                )
                if fate:
                    ctx.report("MW0901", resource, api=resource.api_version, fate=fate)


class EnvoyFilterInventory(Check):
    info = CheckInfo(
        name="envoy-filter-inventory",
        description="Every EnvoyFilter, which bypasses Istio's API guarantees and can change security behaviour.",
        inputs=("EnvoyFilter",),
        codes=("MW0902",),
    )

    def analyze(self, ctx: Context) -> None:
        for envoy_filter in ctx.for_each("EnvoyFilter"):
            patches = envoy_filter.spec.get("configPatches")
            count = len(patches) if isinstance(patches, list) else 0
            ctx.report("MW0902", envoy_filter, patches=count)


class DefaultServiceAccount(Check):
    info = CheckInfo(
        name="default-service-account",
        description="Workloads running as the namespace's default service account share one mesh identity.",
        inputs=(WORKLOAD, MESH_CONFIG),
        codes=("MW0903",),
        references=("SM-DR16",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        for pod in ctx.all_pods():
            if pod.owner.namespace in SYSTEM_NAMESPACES or pod.owner.namespace == root:
                continue
            if pod.service_account == "default":
                ctx.report("MW0903", pod.owner)
