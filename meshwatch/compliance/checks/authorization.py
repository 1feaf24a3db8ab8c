"""AuthorizationPolicy: default deny, coverage, allow-all, risky match patterns, references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context, synthetic
from meshwatch.istio.policies import action, is_http_only, rule_fields, rules, selector
from meshwatch.istio.resources import (
    MESH_CONFIG,
    SYSTEM_NAMESPACES,
    WORKLOAD,
    Resource,
    as_list,
    as_map,
)
from meshwatch.istio.workloads import selector_matches

AP = "AuthorizationPolicy"
STRONG_NORMALIZATION = frozenset({"MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"})


def _is_allow_nothing(policy: Resource) -> bool:
    """``spec: {}`` (or ALLOW with no rules): Istio's default-deny policy."""
    return (
        action(policy) == "ALLOW"
        and not as_list(policy.spec.get("rules"))
        and selector(policy) is None
    )


class DefaultDeny(Check):
    info = CheckInfo(
        name="default-deny",
        description="Every namespace has a default-deny AuthorizationPolicy (its own or mesh-wide).",
        inputs=(AP, "Namespace", MESH_CONFIG),
        codes=("MW0201",),
        references=("SAUZ-SR-1",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        if any(_is_allow_nothing(p) for p in ctx.for_each(AP, root)):
            return
        namespaces = {r.name: r for r in ctx.for_each("Namespace")}
        # Only namespaces the input owns: declared by a Namespace object, or all of them when
        # the input describes the whole mesh. A repo holding one app's policies is not told
        # about namespaces it merely mentions.
        candidates = ctx.namespaces() if ctx.mesh_scope() else set(namespaces)
        for ns in sorted(candidates - SYSTEM_NAMESPACES - {root}):
            if not any(_is_allow_nothing(p) for p in ctx.for_each(AP, ns)):
                ctx.report(
                    "MW0201", namespaces.get(ns) or synthetic("Namespace", "", ns), namespace=ns
                )


class WorkloadCoverage(Check):
    info = CheckInfo(
        name="workload-authz-coverage",
        description="Workloads selected by no AuthorizationPolicy (only mesh-wide or namespace-wide defaults apply).",
        inputs=(AP, WORKLOAD, MESH_CONFIG),
        codes=("MW0202",),
        references=("SAUZ-SR-1",),
        related=("KIA1301",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        mesh_wide = [p for p in ctx.for_each(AP, root) if selector(p) is None]
        for pod in ctx.all_pods():
            namespace = pod.owner.namespace
            if namespace in SYSTEM_NAMESPACES or namespace == root or mesh_wide:
                continue
            policies = ctx.for_each(AP, namespace)
            if any(selector(p) is None for p in policies):
                continue
            if not any(selector_matches(selector(p) or {}, pod.labels) for p in policies):
                ctx.report("MW0202", pod.owner)


class AllowAll(Check):
    info = CheckInfo(
        name="allow-all-rule",
        description="An ALLOW policy with an empty rule allows every request to the workloads it selects.",
        inputs=(AP,),
        codes=("MW0203",),
        references=("SAUZ-SR-1",),
    )

    def analyze(self, ctx: Context) -> None:
        for policy in ctx.for_each(AP):
            if action(policy) != "ALLOW":
                continue
            if any(not list(rule_fields(rule)) for rule in rules(policy)):
                ctx.report("MW0203", policy)


class MatchPatterns(Check):
    info = CheckInfo(
        name="authz-match-patterns",
        description="ALLOW with negative matches, or DENY with positive path matches (Istio security best practice).",
        inputs=(AP,),
        codes=("MW0204", "MW0205"),
    )

    def analyze(self, ctx: Context) -> None:
        for policy in ctx.for_each(AP):
            verb = action(policy)
            for rule in rules(policy):
                for field, values in rule_fields(rule):
                    if verb == "ALLOW" and (
                        field.startswith("not") or field.startswith("when-not:")
                    ):
                        ctx.report(
                            "MW0204", policy, field=field.replace("when-not:", "notValues of ")
                        )
                    elif verb == "DENY" and field == "paths":
                        ctx.report("MW0205", policy, paths=", ".join(str(v) for v in values))


class HttpOnlyDenyOnTcp(Check):
    info = CheckInfo(
        name="http-only-deny-on-tcp",
        description="A DENY rule built only from HTTP attributes applied to TCP ports becomes deny-all there.",
        inputs=(AP, "Service", WORKLOAD),
        codes=("MW0206",),
        related=("KIA0102",),
    )

    def analyze(self, ctx: Context) -> None:
        for policy in ctx.for_each(AP):
            if action(policy) != "DENY":
                continue
            tcp_ports = self._tcp_ports(ctx, policy)
            for rule in rules(policy):
                fields = [f for f, _ in rule_fields(rule) if f not in ("ports", "notPorts")]
                if fields and all(is_http_only(f) for f in fields):
                    ports = self._rule_ports(rule) or tcp_ports
                    hit = sorted(p for p in ports if p in tcp_ports)
                    if hit:
                        ctx.report(
                            "MW0206",
                            policy,
                            fields=", ".join(sorted(set(fields))),
                            ports=", ".join(hit),
                        )

    @staticmethod
    def _rule_ports(rule: Mapping[str, Any]) -> set[str]:
        return {
            str(p)
            for entry in as_list(rule.get("to"))
            for p in as_list(as_map(as_map(entry).get("operation")).get("ports"))
        }

    @staticmethod
    def _tcp_ports(ctx: Context, policy: Resource) -> set[str]:
        """Target ports of Services in front of the selected pods that speak TCP."""
        pods = ctx.selected_pods(policy.namespace, selector(policy))
        ports: set[str] = set()
        for service in ctx.for_each("Service", policy.namespace):
            service_selector = as_map(service.spec.get("selector"))
            if not service_selector or not any(
                all(p.labels.get(k) == v for k, v in service_selector.items()) for p in pods
            ):
                continue
            for port in as_list(service.spec.get("ports")):
                port = as_map(port)
                name = str(port.get("name", ""))
                protocol = str(port.get("appProtocol") or name.split("-", maxsplit=1)[0]).lower()
                if protocol in ("tcp", "mongo", "mysql", "redis", "tls"):
                    ports.add(str(port.get("targetPort") or port.get("port")))
                    ports.add(str(port.get("port")))
        return ports


class MissingNamespaces(Check):
    info = CheckInfo(
        name="authz-missing-namespace",
        description="Rules naming source namespaces that do not exist (when Namespaces are in the input).",
        inputs=(AP, "Namespace"),
        codes=("MW0207",),
        related=(
            "IST0101",
            "KIA0101",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        if not ctx.exists("Namespace"):
            return
        known = {r.name for r in ctx.for_each("Namespace")}
        for policy in ctx.for_each(AP):
            for rule in rules(policy):
                for field, values in rule_fields(rule):
                    if field not in ("namespaces", "notNamespaces"):
                        continue
                    for ns in values:
                        if "*" not in str(ns) and str(ns) not in known:
                            ctx.report("MW0207", policy, namespace=ns)


class ForeignTrustDomain(Check):
    info = CheckInfo(
        name="foreign-trust-domain",
        description="Principals of a trust domain that is neither the mesh's nor one of its aliases.",
        inputs=(AP, MESH_CONFIG),
        codes=("MW0209",),
        related=(
            "KIA0106",
            "KIA0107",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        domains = ctx.trust_domains()
        for policy in ctx.for_each(AP):
            for rule in rules(policy):
                for field, values in rule_fields(rule):
                    if field not in ("principals", "notPrincipals", "when:source.principal"):
                        continue
                    for principal in map(str, values):
                        domain = principal.removeprefix("spiffe://").split("/", 1)[0]
                        if "*" in domain or "/" not in principal:
                            continue
                        if domain not in domains:
                            ctx.report(
                                "MW0209",
                                policy,
                                principal=principal,
                                domain=domain,
                                domains=", ".join(sorted(domains)),
                            )


class PathNormalization(Check):
    info = CheckInfo(
        name="path-normalization",
        description="Path-based policies need MERGE_SLASHES or DECODE_AND_MERGE_SLASHES normalisation.",
        inputs=(AP, MESH_CONFIG),
        codes=("MW0210",),
    )

    def analyze(self, ctx: Context) -> None:
        mode = str(
            as_map(ctx.mesh().get("pathNormalization")).get("normalization") or "BASE"
        ).upper()
        if mode in STRONG_NORMALIZATION:
            return
        for policy in ctx.for_each(AP):
            if any(
                f in ("paths", "notPaths") for rule in rules(policy) for f, _ in rule_fields(rule)
            ):
                ctx.report("MW0210", policy, mode=mode)
