"""Egress: can workloads reach anything outside the mesh without it being declared?"""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context, synthetic
from meshwatch.istio.policies import selector
from meshwatch.istio.resources import MESH_CONFIG, SYSTEM_NAMESPACES, WORKLOAD, as_list, as_map


class OutboundAllowAny(Check):
    info = CheckInfo(
        name="outbound-allow-any",
        description="outboundTrafficPolicy ALLOW_ANY (Istio's default) lets workloads call any external host.",
        inputs=(MESH_CONFIG, "Sidecar"),
        codes=("MW0601",),
        related=("KIA1007",),
    )

    def analyze(self, ctx: Context) -> None:
        if ctx.has_mesh_config():
            mode = str(
                as_map(ctx.mesh().get("outboundTrafficPolicy")).get("mode") or "ALLOW_ANY"
            ).upper()
            if mode == "ALLOW_ANY":
                ctx.report(
                    "MW0601",
                    synthetic("MeshConfig", ctx.root_namespace(), "mesh"),
                    where="mesh-wide",
                )
        for sidecar in ctx.for_each("Sidecar"):
            mode = str(as_map(sidecar.spec.get("outboundTrafficPolicy")).get("mode") or "").upper()
            if mode == "ALLOW_ANY":
                ctx.report("MW0601", sidecar, where="in this Sidecar")


class EgressSidecar(Check):
    info = CheckInfo(
        name="namespace-egress-sidecar",
        description="Namespaces running workloads with no Sidecar resource restricting egress hosts.",
        inputs=("Sidecar", "Namespace", WORKLOAD, MESH_CONFIG),
        codes=("MW0602",),
        related=("KIA1004",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        if any(
            selector(s) is None and as_list(s.spec.get("egress"))
            for s in ctx.for_each("Sidecar", root)
        ):
            return  # a mesh-wide default Sidecar restricts egress everywhere
        namespaces = {r.name: r for r in ctx.for_each("Namespace")}
        for ns in sorted(ctx.namespaces() - SYSTEM_NAMESPACES - {root}):
            if not ctx.pods(ns):
                continue
            if not any(as_list(s.spec.get("egress")) for s in ctx.for_each("Sidecar", ns)):
                ctx.report(
                    "MW0602", namespaces.get(ns) or synthetic("Namespace", "", ns), namespace=ns
                )


class WildcardServiceEntry(Check):
    info = CheckInfo(
        name="wildcard-service-entry",
        description="ServiceEntries with wildcard hosts and resolution NONE pass traffic to any matching address.",
        inputs=("ServiceEntry",),
        codes=("MW0603",),
    )

    def analyze(self, ctx: Context) -> None:
        for entry in ctx.for_each("ServiceEntry"):
            resolution = str(entry.spec.get("resolution") or "NONE").upper()
            wildcards = [str(h) for h in as_list(entry.spec.get("hosts")) if str(h).startswith("*")]
            if wildcards and resolution == "NONE":
                ctx.report("MW0603", entry, hosts=", ".join(wildcards))
