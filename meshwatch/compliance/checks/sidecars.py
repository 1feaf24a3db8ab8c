"""Sidecar resources, judged as istioctl's ``sidecar.SelectorAnalyzer`` and Kiali's sidecar
checkers judge them."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context, none_in_input
from meshwatch.istio.resources import MESH_CONFIG, Resource, as_map
from meshwatch.istio.workloads import label_selector_text, selector_matches


class SidecarSelector(Check):
    """istioctl's ``SelectorAnalyzer``: a Sidecar with a non-empty ``workloadSelector`` that
    no Pod of its namespace matches is IST0101; a Pod that two or more Sidecars select is
    IST0110, reported on each of them, once per such pod."""

    info = CheckInfo(
        name="sidecar-selector",
        description="Sidecars whose workloadSelector matches no Pod, or selects a Pod another Sidecar selects.",
        inputs=("Sidecar", "Pod"),
        codes=("MW0604", "MW0605"),
        per_code={"MW0604": ("IST0101",), "MW0605": ("IST0110",)},
    )

    def analyze(self, ctx: Context) -> None:
        pods = ctx.for_each("Pod")
        selecting: dict[tuple[str, str], list[Resource]] = {}
        for sidecar in sorted(ctx.for_each("Sidecar"), key=lambda r: (r.namespace, r.name)):
            wanted = as_map(as_map(sidecar.spec.get("workloadSelector")).get("labels"))
            if not wanted:
                continue
            matched = [
                p
                for p in pods
                if p.namespace == sidecar.namespace and selector_matches(wanted, p.labels)
            ]
            if not matched:
                ctx.report(
                    "MW0604",
                    sidecar,
                    selector=label_selector_text(wanted),
                    note=none_in_input(pods, "Pods"),
                    unconfirmed=not pods,
                )
            for pod in matched:
                selecting.setdefault((pod.namespace, pod.name), []).append(sidecar)
        for (namespace, pod_name), sidecars in sorted(selecting.items()):
            if len(sidecars) < 2:
                continue
            names = ", ".join(s.name for s in sidecars)
            for sidecar in sidecars:
                ctx.report("MW0605", sidecar, sidecars=names, namespace=namespace, pod=pod_name)


class RootSidecarSelector(Check):
    """KIA1006 as Kiali's sidecar ``GlobalChecker`` raises it: the mesh-wide default Sidecar
    (in the root namespace) has a non-empty ``workloadSelector``, so it is no default."""

    info = CheckInfo(
        name="root-sidecar-selector",
        description="A Sidecar in the root namespace with a workloadSelector (KIA1006's case).",
        inputs=("Sidecar", MESH_CONFIG),
        codes=("MW0606",),
        references=("KIA1006",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        for sidecar in ctx.for_each("Sidecar", root):
            if as_map(as_map(sidecar.spec.get("workloadSelector")).get("labels")):
                ctx.report("MW0606", sidecar, root=root)


class AmbiguousOutboundPolicy(Check):
    """KIA1007 as Kiali's ``OutboundTrafficPolicyModeChecker`` raises it: a Sidecar sets
    ``outboundTrafficPolicy`` without a mode other than REGISTRY_ONLY. REGISTRY_ONLY is the
    enum's zero value, so once stored it cannot be told apart from an unset mode."""

    info = CheckInfo(
        name="sidecar-outbound-policy-ambiguous",
        description="Sidecar outboundTrafficPolicy whose mode is unset or REGISTRY_ONLY (KIA1007's case).",
        inputs=("Sidecar",),
        codes=("MW0607",),
        references=("KIA1007",),
    )

    def analyze(self, ctx: Context) -> None:
        for sidecar in ctx.for_each("Sidecar"):
            policy = sidecar.spec.get("outboundTrafficPolicy")
            if policy is None:
                continue
            mode = str(as_map(policy).get("mode") or "REGISTRY_ONLY").upper()
            if mode in ("REGISTRY_ONLY", "0"):
                ctx.report("MW0607", sidecar, mode=str(as_map(policy).get("mode") or "unset"))
