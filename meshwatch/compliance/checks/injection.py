"""Sidecar injection: workloads outside the mesh, or inside it with holes punched through."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import MESH_CONFIG, SYSTEM_NAMESPACES, WORKLOAD, as_map

INJECT = "sidecar.istio.io/inject"
PROXY_UID = 1337
EXCLUSIONS = (
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
    "traffic.sidecar.istio.io/excludeInterfaces",
)
NARROWING = (
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
    "traffic.sidecar.istio.io/includeInboundPorts",
)


class NamespaceInjection(Check):
    info = CheckInfo(
        name="namespace-injection",
        description="Namespaces not enabled for sidecar injection (neither istio-injection nor istio.io/rev).",
        inputs=("Namespace", MESH_CONFIG),
        codes=("MW0701",),
        related=("IST0102",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        for namespace in ctx.for_each("Namespace"):
            if namespace.name in SYSTEM_NAMESPACES or namespace.name == root:
                continue
            labels = namespace.labels
            if (
                labels.get("istio-injection") != "enabled"
                and not labels.get("istio.io/rev")
                and labels.get("istio.io/dataplane-mode") != "ambient"
            ):
                ctx.report(
                    "MW0701",
                    namespace,
                    namespace=namespace.name,
                    label=labels.get("istio-injection", "unset"),
                )


class InjectionOptOut(Check):
    info = CheckInfo(
        name="workload-injection-opt-out",
        description="Pods or workloads opting out of sidecar injection.",
        inputs=(WORKLOAD,),
        codes=("MW0702",),
        related=("IST0103",),
    )

    def analyze(self, ctx: Context) -> None:
        for pod in ctx.all_pods():
            if str(pod.labels.get(INJECT, pod.annotations.get(INJECT, ""))).lower() == "false":
                ctx.report("MW0702", pod.owner)


class ProxyUid(Check):
    info = CheckInfo(
        name="application-uid-1337",
        description="Application containers running as UID 1337, whose traffic the sidecar does not capture.",
        inputs=(WORKLOAD,),
        codes=("MW0703",),
        related=("IST0144",),
    )

    def analyze(self, ctx: Context) -> None:
        for pod in ctx.all_pods():
            pod_uid = as_map(pod.spec.get("securityContext")).get("runAsUser")
            for container in pod.containers:
                if container.get("name") == "istio-proxy":
                    continue
                uid = as_map(container.get("securityContext")).get("runAsUser", pod_uid)
                if uid == PROXY_UID:
                    ctx.report("MW0703", pod.owner, container=container.get("name", "?"))


class TrafficExclusion(Check):
    info = CheckInfo(
        name="traffic-exclusion-annotations",
        description="Annotations that let traffic bypass the sidecar (and so mTLS, policy and telemetry).",
        inputs=(WORKLOAD,),
        codes=("MW0704",),
    )

    def analyze(self, ctx: Context) -> None:
        for pod in ctx.all_pods():
            for key in EXCLUSIONS:
                value = str(pod.annotations.get(key, "")).strip()
                if value:
                    ctx.report("MW0704", pod.owner, annotation=key, value=value)
            for key in NARROWING:
                value = str(pod.annotations.get(key, "*")).strip()
                if value != "*":
                    ctx.report("MW0704", pod.owner, annotation=key, value=value)
