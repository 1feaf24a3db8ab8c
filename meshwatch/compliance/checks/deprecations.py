"""Deprecated Istio fields and removed types, as istioctl's ``deprecation.FieldAnalyzer``
reports them (IST0002): a VirtualService fault delay with ``percent`` (replaced by
``percentage``), a Sidecar ``outboundTrafficPolicy.egressProxy`` (ignored), and the CRDs of the
removed ``rbac.istio.io`` types. One finding per occurrence.

meshwatch's ``deprecated-istio-apis`` check, on API versions, is a related but different
finding: istioctl does not report old API versions."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import as_list, as_map

REMOVED_RBAC_KINDS = frozenset(
    {"ClusterRbacConfig", "RbacConfig", "ServiceRole", "ServiceRoleBinding"}
)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


class DeprecatedFields(Check):
    info = CheckInfo(
        name="deprecated-istio-fields",
        description="Deprecated or ignored Istio fields and removed Istio types (IST0002's cases).",
        inputs=("VirtualService", "Sidecar", "CustomResourceDefinition"),
        codes=("MW0909",),
        references=("IST0002",),
    )

    def analyze(self, ctx: Context) -> None:
        for service in ctx.for_each("VirtualService"):
            for index, route in enumerate(as_list(service.spec.get("http"))):
                delay = as_map(as_map(as_map(route).get("fault")).get("delay"))
                if _number(delay.get("percent")) > 0:
                    ctx.report(
                        "MW0909",
                        service,
                        detail=f"http[{index}].fault.delay.percent is deprecated; use percentage",
                    )
        for sidecar in ctx.for_each("Sidecar"):
            policy = as_map(sidecar.spec.get("outboundTrafficPolicy"))
            if policy.get("egressProxy") is not None:
                ctx.report("MW0909", sidecar, detail="outboundTrafficPolicy.egressProxy is ignored")
        for crd in ctx.for_each("CustomResourceDefinition"):
            group = str(crd.spec.get("group", ""))
            kind = str(as_map(crd.spec.get("names")).get("kind", ""))
            if group == "rbac.istio.io" and kind in REMOVED_RBAC_KINDS:
                ctx.report("MW0909", crd, detail=f"custom resource type {group} {kind} is removed")
