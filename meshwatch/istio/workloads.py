"""Pods as the mesh sees them, whatever object declares them (Deployment, Pod, CronJob…)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshwatch.istio.resources import Resource, as_list, as_map


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """The pod a workload object runs, with the object that declares it."""

    owner: Resource
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]

    @property
    def service_account(self) -> str:
        return str(
            self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default"
        )

    @property
    def containers(self) -> list[Mapping[str, Any]]:
        return [
            as_map(c)
            for c in as_list(self.spec.get("containers")) + as_list(self.spec.get("initContainers"))
        ]


def pod_template(resource: Resource) -> PodTemplate | None:
    """The pod template of a workload object (``None`` for other kinds)."""
    if resource.kind == "Pod":
        return PodTemplate(resource, resource.labels, resource.annotations, resource.spec)
    spec = resource.spec
    if resource.kind == "CronJob":
        spec = as_map(as_map(spec.get("jobTemplate")).get("spec"))
    template = as_map(spec.get("template"))
    if not template:
        return None
    meta = as_map(template.get("metadata"))
    return PodTemplate(
        resource,
        as_map(meta.get("labels")),
        as_map(meta.get("annotations")),
        as_map(template.get("spec")),
    )


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Istio ``selector.matchLabels`` semantics: every label must match; empty matches all."""
    match_labels = as_map(selector.get("matchLabels")) if "matchLabels" in selector else selector
    return all(labels.get(k) == v for k, v in match_labels.items())


PROXY_CONTAINER = "istio-proxy"
INJECT_KEY = "sidecar.istio.io/inject"


def label_selector_text(labels: Mapping[str, Any]) -> str:
    """A set-based selector as Kubernetes prints it (``a=1,b=2``, keys sorted; ``""`` for
    the empty selector, which selects everything)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def has_proxy(spec: Mapping[str, Any]) -> bool:
    """Whether the pod spec runs Istio's sidecar: an ``istio-proxy`` container (or native
    sidecar init container) with an image, as istioctl's analyzers decide it."""
    containers = as_list(spec.get("containers")) + as_list(spec.get("initContainers"))
    return any(
        as_map(c).get("name") == PROXY_CONTAINER and as_map(c).get("image") for c in containers
    )


def pod_in_mesh(pod: Resource, namespace_labels: Mapping[str, str] | None) -> bool:
    """istioctl's ``util.PodInMesh``: the proxy container, else the pod's own
    ``sidecar.istio.io/inject`` label, then annotation (``"true"`` only), else its
    namespace's ``istio-injection=enabled`` (when the Namespace is known)."""
    if has_proxy(pod.spec):
        return True
    for values in (pod.labels, pod.annotations):
        if INJECT_KEY in values:
            return str(values[INJECT_KEY]) == "true"
    if namespace_labels is not None:
        return namespace_labels.get("istio-injection") == "enabled"
    return False
