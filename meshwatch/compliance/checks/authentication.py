"""RequestAuthentication: tokens that are validated but not required, and JWKS fetched insecurely."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.policies import action, rule_fields, rules, selector
from meshwatch.istio.resources import MESH_CONFIG, WORKLOAD, Resource, as_list, as_map


class TokenRequired(Check):
    info = CheckInfo(
        name="request-authentication-not-enforced",
        description="A RequestAuthentication without an AuthorizationPolicy requiring requestPrincipals lets tokenless requests pass.",
        inputs=("RequestAuthentication", "AuthorizationPolicy", WORKLOAD, MESH_CONFIG),
        codes=("MW0301",),
        references=("APE-SR-3",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.root_namespace()
        for authn in ctx.for_each("RequestAuthentication"):
            namespaces = (
                [authn.namespace]
                if authn.namespace != root
                else sorted({p.namespace for p in ctx.for_each("AuthorizationPolicy")} | {root})
            )
            enforcing = [
                p
                for ns in namespaces
                for p in ctx.for_each("AuthorizationPolicy", ns)
                if self._requires_token(p) and self._overlaps(ctx, authn, p)
            ]
            if not enforcing:
                ctx.report("MW0301", authn)

    @staticmethod
    def _requires_token(policy: Resource) -> bool:
        verb = action(policy)
        for rule in rules(policy):
            for field, values in rule_fields(rule):
                if verb == "ALLOW" and field == "requestPrincipals" and values:
                    return True
                if verb == "DENY" and field == "notRequestPrincipals" and values:
                    return True
        return False

    @staticmethod
    def _overlaps(ctx: Context, authn: Resource, policy: Resource) -> bool:
        if selector(policy) is None:
            return True
        if selector(authn) is None:
            return False  # a namespace-wide token rule needs a namespace-wide requirement
        mine = {p.owner.ref for p in ctx.selected_pods(authn.namespace, selector(authn))}
        theirs = {p.owner.ref for p in ctx.selected_pods(policy.namespace, selector(policy))}
        return bool(mine & theirs) or (not mine and selector(authn) == selector(policy))


class JwksHttps(Check):
    info = CheckInfo(
        name="jwks-uri-https",
        description="JWKS fetched over plain HTTP lets anyone on the path substitute signing keys.",
        inputs=("RequestAuthentication",),
        codes=("MW0302",),
    )

    def analyze(self, ctx: Context) -> None:
        for authn in ctx.for_each("RequestAuthentication"):
            for rule in as_list(authn.spec.get("jwtRules")):
                uri = str(as_map(rule).get("jwksUri") or "")
                if uri and not uri.lower().startswith("https://"):
                    ctx.report("MW0302", authn, uri=uri, issuer=as_map(rule).get("issuer", ""))
