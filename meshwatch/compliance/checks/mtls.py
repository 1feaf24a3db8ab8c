"""Mutual TLS: is it required everywhere, and is anything relying on it where it is not?"""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context, synthetic
from meshwatch.istio.policies import (
    IDENTITY_FIELDS,
    effective_namespace_mode,
    mtls_mode,
    rule_fields,
    rules,
    selector,
)
from meshwatch.istio.resources import MESH_CONFIG, WORKLOAD, Resource, as_list, as_map

PA = "PeerAuthentication"


class MeshWideStrictMtls(Check):
    info = CheckInfo(
        name="mesh-wide-strict-mtls",
        description="A mesh-wide STRICT PeerAuthentication in the root namespace requires mTLS everywhere.",
        inputs=(PA, MESH_CONFIG),
        codes=("MW0101",),
        references=("SM-DR16",),
        related=("KIA0205",),
    )

    def analyze(self, ctx: Context) -> None:
        if not ctx.mesh_scope():
            return
        root = ctx.root_namespace()
        mesh_wide = [pa for pa in ctx.for_each(PA, root) if selector(pa) is None]
        if any(mtls_mode(pa) == "STRICT" for pa in mesh_wide):
            return
        target = mesh_wide[0] if mesh_wide else synthetic("Mesh", root, "mesh")
        ctx.report(
            "MW0101", target, root=root, mode=mtls_mode(mesh_wide[0]) if mesh_wide else "not set"
        )


class MtlsDowngrade(Check):
    info = CheckInfo(
        name="mtls-downgrade",
        description="Namespace, workload or port-level PeerAuthentication downgrades to PERMISSIVE or DISABLE.",
        inputs=(PA, MESH_CONFIG),
        codes=("MW0102", "MW0103"),
        references=("SM-DR16",),
        related=("KIA0207",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        for pa in ctx.for_each(PA):
            scope = "workload" if selector(pa) is not None else "namespace"
            mode = mtls_mode(pa)
            mesh_wide = pa.namespace == root and scope == "namespace"
            if not mesh_wide:  # the mesh-wide policy is mesh-wide-strict-mtls's business
                self._judge(ctx, pa, mode, scope, "")
            for port, setting in as_map(pa.spec.get("portLevelMtls")).items():
                self._judge(
                    ctx,
                    pa,
                    str(as_map(setting).get("mode") or "UNSET").upper(),
                    scope,
                    f" on port {port}",
                )

    @staticmethod
    def _judge(ctx: Context, pa: Resource, mode: str, scope: str, port: str) -> None:
        if mode == "PERMISSIVE":
            ctx.report("MW0102", pa, scope=scope, port=port)
        elif mode == "DISABLE":
            ctx.report("MW0103", pa, scope=scope, port=port)


class DestinationRuleDisablesMtls(Check):
    info = CheckInfo(
        name="destination-rule-disables-mtls",
        description="A DestinationRule with tls.mode DISABLE toward an in-mesh host: an error where the namespace requires STRICT, a warning where it still accepts plaintext.",
        inputs=("DestinationRule", PA, MESH_CONFIG),
        codes=("MW0104", "MW0106"),
        references=("SM-DR16",),
        related=(
            "IST0113",
            "KIA0207",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        mesh_pa = ctx.for_each(PA, ctx.root_namespace())
        for rule in ctx.for_each("DestinationRule"):
            host = str(rule.spec.get("host", ""))
            namespace = _host_namespace(host, rule.namespace)
            if namespace is None:
                continue
            policy = as_map(rule.spec.get("trafficPolicy"))
            tls_settings = [as_map(policy.get("tls"))] + [
                as_map(as_map(p).get("tls")) for p in as_list(policy.get("portLevelSettings"))
            ]
            if not any(str(t.get("mode", "")).upper() == "DISABLE" for t in tls_settings):
                continue
            mode = effective_namespace_mode(ctx.for_each(PA, namespace), mesh_pa)
            if mode == "STRICT":
                ctx.report("MW0104", rule, host=host, namespace=namespace)
            else:  # plaintext on purpose deserves a finding whatever the mesh mode
                ctx.report("MW0106", rule, host=host, namespace=namespace, mode=mode)


def _host_namespace(host: str, default: str) -> str | None:
    """Namespace of an in-mesh host (``name``, ``name.ns``, ``name.ns.svc…``); None if external."""
    if not host or host.startswith("*"):
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return default
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return parts[1]
    return None


class IdentityPolicyWithoutStrictMtls(Check):
    info = CheckInfo(
        name="identity-authz-without-strict-mtls",
        description="Principal- or namespace-based authorization where mTLS is not STRICT (the identity may be absent).",
        inputs=("AuthorizationPolicy", PA, MESH_CONFIG, WORKLOAD),
        codes=("MW0105",),
        references=(
            "SM-DR16",
            "SAUZ-SR-1",
        ),
        related=("KIA0105",),
    )

    def analyze(self, ctx: Context) -> None:
        mesh_pa = ctx.for_each(PA, ctx.root_namespace())
        for policy in ctx.for_each("AuthorizationPolicy"):
            fields = sorted(
                {f for rule in rules(policy) for f, _ in rule_fields(rule) if f in IDENTITY_FIELDS}
            )
            if not fields:
                continue
            namespace_pa = ctx.for_each(PA, policy.namespace)
            mode = effective_namespace_mode(namespace_pa, mesh_pa)
            weaker = self._workload_downgrade(ctx, policy, namespace_pa)
            if weaker:
                mode = weaker
            if mode != "STRICT":
                ctx.report("MW0105", policy, fields=", ".join(fields), mode=mode)

    @staticmethod
    def _workload_downgrade(ctx: Context, policy: Resource, namespace_pa: list[Resource]) -> str:
        """A workload-level PeerAuthentication on the same pods that is not STRICT."""
        targets = {p.owner.ref for p in ctx.selected_pods(policy.namespace, selector(policy))}
        for pa in namespace_pa:
            pa_selector = selector(pa)
            if pa_selector is None or mtls_mode(pa) in ("STRICT", "UNSET"):
                continue
            if targets & {p.owner.ref for p in ctx.selected_pods(pa.namespace, pa_selector)}:
                return mtls_mode(pa)
        return ""
