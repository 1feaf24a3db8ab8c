"""Sidecar injection: workloads outside the mesh, or inside it with holes punched through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import (
    MESH_CONFIG,
    SYSTEM_NAMESPACES,
    WORKLOAD,
    Resource,
    as_list,
    as_map,
)
from meshwatch.istio.workloads import INJECT_KEY, PROXY_CONTAINER

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
            if (
                str(pod.labels.get(INJECT_KEY, pod.annotations.get(INJECT_KEY, ""))).lower()
                == "false"
            ):
                ctx.report("MW0702", pod.owner)


ISTIOCTL_UID_KINDS = frozenset({"Pod", "Deployment"})
"""The kinds istioctl's ``applicationUID.Analyzer`` (IST0144) reads."""
NOT_APPLICATIONS = frozenset({PROXY_CONTAINER, "istio-operator"})


def _is_istio_control_plane(resource: Resource) -> bool:
    """As istioctl decides it: an ``istio`` label of any value, or ``release: istio``."""
    labels = resource.labels
    return "istio" in labels or labels.get("release") == "istio"


def _uid(securable: Mapping[str, Any]) -> object:
    return as_map(securable.get("securityContext")).get("runAsUser")


class ProxyUid(Check):
    """IST0144, exactly as ``istioctl analyze`` raises it (``applicationUID.Analyzer``): on
    Pods and Deployments not labelled as Istio's control plane, once for a pod-level
    ``runAsUser: 1337`` and once more for every container (not init containers, not
    ``istio-proxy`` or ``istio-operator``) whose own securityContext sets it."""

    info = CheckInfo(
        name="application-uid-1337",
        description="Application containers running as UID 1337, whose traffic the sidecar does not capture (IST0144's cases).",
        inputs=(WORKLOAD,),
        codes=("MW0703",),
        references=("IST0144",),
    )

    def analyze(self, ctx: Context) -> None:
        for pod in ctx.all_pods():
            if pod.owner.kind not in ISTIOCTL_UID_KINDS or _is_istio_control_plane(pod.owner):
                continue
            if _uid(pod.spec) == PROXY_UID:
                ctx.report("MW0703", pod.owner, where="the pod securityContext")
            for container in as_list(pod.spec.get("containers")):
                container = as_map(container)
                name = str(container.get("name", "?"))
                if name not in NOT_APPLICATIONS and _uid(container) == PROXY_UID:
                    ctx.report("MW0703", pod.owner, where=f"container {name}")


class ProxyUidElsewhere(Check):
    """What IST0144 leaves out: workload kinds istioctl does not read (StatefulSet, DaemonSet,
    Job, CronJob, ReplicaSet), where a container running as 1337 escapes capture as much."""

    info = CheckInfo(
        name="application-uid-1337-other-workloads",
        description="Containers of StatefulSets, DaemonSets, Jobs and the like running as UID 1337.",
        inputs=(WORKLOAD,),
        codes=("MW0705",),
        related=("IST0144",),
    )

    def analyze(self, ctx: Context) -> None:
        for pod in ctx.all_pods():
            if pod.owner.kind in ISTIOCTL_UID_KINDS or _is_istio_control_plane(pod.owner):
                continue
            pod_uid = _uid(pod.spec)
            for container in pod.containers:  # init containers too, inheriting the pod's UID
                name = str(container.get("name", "?"))
                uid = as_map(container.get("securityContext")).get("runAsUser", pod_uid)
                if name not in NOT_APPLICATIONS and uid == PROXY_UID:
                    ctx.report("MW0705", pod.owner, container=name, kind=pod.owner.kind)


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
