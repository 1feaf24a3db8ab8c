"""Selectors that select nothing, judged exactly as ``istioctl analyze`` and Kiali judge them.

The two tools disagree on what a "workload" is, so each gets its own check rather than one
check that matches neither:

* istioctl reads **Pod** objects only (a Deployment in a file is not a workload to it), and for
  AuthorizationPolicies only pods in the mesh (``util.PodInMesh``);
* Kiali reads **workloads** (Deployments, StatefulSets, bare Pods… by their pod template
  labels), and ignores sidecar status.

A selector can only be found to match nothing when the workloads are part of the input (or
``--cluster`` mode reads them); when the input holds none, the finding says so, because the
reference tool reports it all the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context, none_in_input
from meshwatch.istio.policies import selector
from meshwatch.istio.resources import MESH_CONFIG, WORKLOAD, Resource, as_map
from meshwatch.istio.workloads import label_selector_text, pod_in_mesh, selector_matches

AP = "AuthorizationPolicy"
SELECTOR_KINDS = (AP, "PeerAuthentication", "RequestAuthentication", "Sidecar")


class AuthzNoMatchingWorkloads(Check):
    """IST0127 as istioctl's ``AuthorizationPoliciesAnalyzer`` raises it: a policy in the root
    namespace with a selector that no in-mesh pod of the whole mesh matches; a policy without
    selector in a namespace with no in-mesh pod; a policy with a selector that no in-mesh pod
    of its namespace matches. A selector-less root-namespace policy is never reported."""

    info = CheckInfo(
        name="authz-no-matching-workloads",
        description="AuthorizationPolicies that apply to no pod in the mesh (IST0127's cases).",
        inputs=(AP, "Pod", "Namespace", MESH_CONFIG),
        codes=("MW0211",),
        references=("IST0127",),
    )

    def analyze(self, ctx: Context) -> None:
        namespaces = {r.name: r.labels for r in ctx.for_each("Namespace")}
        pods = ctx.for_each("Pod")
        in_mesh: dict[str, list[Mapping[str, str]]] = {}
        for pod in pods:
            if pod_in_mesh(pod, namespaces.get(pod.namespace)):
                in_mesh.setdefault(pod.namespace, []).append(pod.labels)
        root = ctx.root_namespace()
        for policy in ctx.for_each(AP):
            has_selector = "selector" in policy.spec and policy.spec["selector"] is not None
            wanted = as_map(as_map(policy.spec.get("selector")).get("matchLabels"))
            if policy.namespace == root:
                if has_selector and not any(
                    selector_matches(wanted, labels)
                    for group in in_mesh.values()
                    for labels in group
                ):
                    self._report(ctx, policy, wanted, pods)
                continue
            local = in_mesh.get(policy.namespace, [])
            if not has_selector:
                if not local:
                    self._report(ctx, policy, {}, pods)
            elif not any(selector_matches(wanted, labels) for labels in local):
                self._report(ctx, policy, wanted, pods)

    @staticmethod
    def _report(
        ctx: Context, policy: Resource, wanted: Mapping[str, Any], pods: list[Resource]
    ) -> None:
        ctx.report(
            "MW0211",
            policy,
            labels=label_selector_text(wanted) or "(none)",
            note=none_in_input(pods, "Pods"),
            unconfirmed=not pods,
        )


class GatewaySelector(Check):
    """IST0101 as istioctl's gateway analyzers raise it for a selector: no Pod in any
    namespace has the Gateway's ``selector`` labels (an empty selector matches any pod)."""

    info = CheckInfo(
        name="gateway-selector-not-found",
        description="Gateways whose selector matches no Pod (IST0101's selector case).",
        inputs=("Gateway", "Pod"),
        codes=("MW0507",),
        references=("IST0101",),
    )

    def analyze(self, ctx: Context) -> None:
        pods = ctx.for_each("Pod")
        for gateway in ctx.for_each("Gateway"):
            wanted = as_map(gateway.spec.get("selector"))
            if not any(selector_matches(wanted, pod.labels) for pod in pods):
                ctx.report(
                    "MW0507",
                    gateway,
                    selector=label_selector_text(wanted),
                    note=none_in_input(pods, "Pods"),
                    unconfirmed=not pods,
                )


def _unmatched(ctx: Context) -> Iterator[tuple[Resource, Mapping[str, Any]]]:
    """Policies and Sidecars with selector labels that no workload of their own namespace
    has, with those labels (``istio.policies.selector`` reads either selector field)."""
    for kind in SELECTOR_KINDS:
        for resource in ctx.for_each(kind):
            wanted = selector(resource)
            if wanted is not None and not ctx.selected_pods(resource.namespace, wanted):
                yield resource, as_map(wanted["matchLabels"])


class SelectorMatchesNothing(Check):
    """meshwatch's own: the same question as Kiali's, asked only when the input holds
    workloads to compare with."""

    info = CheckInfo(
        name="selector-matches-nothing",
        description="Security resources whose selector matches no workload in their namespace.",
        inputs=(*SELECTOR_KINDS, WORKLOAD),
        codes=("MW0208",),
        related=(
            "IST0127",
            "KIA0004",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        if not ctx.all_pods():
            return  # no workloads in the input: nothing to compare with
        for resource, wanted in _unmatched(ctx):
            labels = ",".join(f"{k}={v}" for k, v in wanted.items())
            ctx.report(
                "MW0208", resource, kind=resource.kind, labels=labels, namespace=resource.namespace
            )


class KialiSelectorWorkloads(Check):
    """KIA0004 as Kiali's ``GenericNoWorkloadFoundChecker`` raises it: an AuthorizationPolicy,
    PeerAuthentication or RequestAuthentication whose non-empty ``selector.matchLabels``, or a
    Sidecar whose non-empty ``workloadSelector.labels``, matches no workload of its namespace."""

    info = CheckInfo(
        name="selector-no-workload-kiali",
        description="Policies and Sidecars whose selector matches no workload of their namespace (KIA0004's cases).",
        inputs=(*SELECTOR_KINDS, WORKLOAD),
        codes=("MW0212",),
        references=("KIA0004",),
    )

    def analyze(self, ctx: Context) -> None:
        for resource, wanted in _unmatched(ctx):
            path = (
                "spec.workloadSelector.labels"
                if resource.kind == "Sidecar"
                else "spec.selector.matchLabels"
            )
            ctx.report(
                "MW0212",
                resource,
                kind=resource.kind,
                path=path,
                labels=label_selector_text(wanted),
                namespace=resource.namespace,
            )


class KialiGatewayWorkloads(Check):
    """KIA0302 as Kiali's gateway ``SelectorChecker`` raises it: no workload in any namespace
    has the Gateway's selector labels (Kiali's default, where ``PILOT_SCOPE_GATEWAY_TO_NAMESPACE``
    is off; an empty selector matches any workload)."""

    info = CheckInfo(
        name="gateway-selector-no-workload-kiali",
        description="Gateways whose selector matches no workload (KIA0302's cases).",
        inputs=("Gateway", WORKLOAD),
        codes=("MW0508",),
        references=("KIA0302",),
    )

    def analyze(self, ctx: Context) -> None:
        workloads = ctx.all_pods()
        for gateway in ctx.for_each("Gateway"):
            wanted = as_map(gateway.spec.get("selector"))
            if not any(selector_matches(wanted, w.labels) for w in workloads):
                ctx.report("MW0508", gateway, selector=label_selector_text(wanted) or "(empty)")
