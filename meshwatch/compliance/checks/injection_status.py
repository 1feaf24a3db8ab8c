"""Sidecar injection status, as istioctl's ``injection.Analyzer`` reports it.

* IST0102, on a Namespace (``istio-system`` and Kubernetes' own namespaces aside) with neither
  an ``istio-injection`` value nor an ``istio.io/rev`` label, unless it is ambient
  (``istio.io/dataplane-mode=ambient``) or the injector's ConfigMap
  (``istio-sidecar-injector[-<rev>]``, ``values``) sets
  ``sidecarInjectorWebhook.enableNamespacesByDefault``. Namespaces holding no pods are reported
  too: istioctl does. An explicit ``istio-injection=disabled`` is a decision, not a finding.
* IST0103, on a Pod in a namespace labelled ``istio-injection=enabled`` that runs no
  ``istio-proxy`` container, unless it opts out (``sidecar.istio.io/inject: "false"`` as a
  label, which wins, or an annotation) or uses the host network. istioctl reads Pod objects
  only: a Deployment's template is not a pod that is missing anything yet.

meshwatch's own ``namespace-injection`` and ``workload-injection-opt-out`` checks go further
(revision labels, deliberate opt-outs); these two say exactly what istioctl says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import SYSTEM_NAMESPACES, Resource, as_map
from meshwatch.istio.workloads import INJECT_KEY, has_proxy

ISTIO_SYSTEM = "istio-system"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"


def _enabled_by_default(configmap: Resource) -> bool:
    try:
        values = json.loads(str(as_map(configmap.body.get("data")).get("values") or ""))
        return (
            as_map(as_map(values).get("sidecarInjectorWebhook")).get("enableNamespacesByDefault")
            is True
        )
    except (ValueError, TypeError):
        return False


class InjectionStatus(Check):
    info = CheckInfo(
        name="injection-status",
        description="Namespaces not enabled for injection, and pods in injected namespaces without a sidecar (IST0102, IST0103).",
        inputs=("Namespace", "Pod", "ConfigMap"),
        codes=("MW0706", "MW0707"),
        per_code={"MW0706": ("IST0102",), "MW0707": ("IST0103",)},
    )

    def analyze(self, ctx: Context) -> None:
        injectors: Mapping[str, Resource] = {c.name: c for c in ctx.for_each("ConfigMap")}
        by_default = False  # as in istioctl, the last injector ConfigMap read stays in force
        injected: set[str] = set()
        for namespace in sorted(ctx.for_each("Namespace"), key=lambda r: r.name):
            if namespace.name == ISTIO_SYSTEM or namespace.name in SYSTEM_NAMESPACES:
                continue
            labels = namespace.labels
            if labels.get("istio.io/dataplane-mode") == "ambient":
                continue
            revision = labels.get("istio.io/rev")
            configmap = injectors.get(
                f"{INJECTOR_CONFIGMAP}-{revision}" if revision else INJECTOR_CONFIGMAP
            )
            if configmap is not None:
                by_default = _enabled_by_default(configmap)
            injection = str(labels.get("istio-injection") or "")
            if not injection and "istio.io/rev" not in labels:
                if not by_default:
                    ctx.report("MW0706", namespace, namespace=namespace.name)
                continue
            if injection == "enabled":
                injected.add(namespace.name)
        for pod in ctx.for_each("Pod"):
            if pod.namespace not in injected:
                continue
            choice = str(pod.labels.get(INJECT_KEY, pod.annotations.get(INJECT_KEY, "")))
            if choice.casefold() == "false" or pod.spec.get("hostNetwork") is True:
                continue
            if not has_proxy(pod.spec):
                ctx.report("MW0707", pod, namespace=pod.namespace, pod=pod.name)
