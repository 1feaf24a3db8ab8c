"""Istio ``AuthorizationPolicy`` → Envoy RBAC filter config, as istiod does it, for the fields
meshwatch emits (and their negations).

Covered: DENY policies; ``selector.matchLabels``; the policy's namespace or the root
namespace; ``from.source.principals``/``notPrincipals``/``namespaces``/``notNamespaces``;
``to.operation.ports``/``notPorts``/``paths``/``notPaths``/``methods``/``notMethods``/
``hosts``/``notHosts``; ``istio.io/dry-run`` (rendered as ``shadow_rules``: Envoy evaluates and
counts, blocks nothing). Semantics as Istio documents them: a rule's ``from``, ``to`` are
ANDed, list entries are ORed, fields within an entry are ANDed; a principal ``p`` matches the
peer certificate's URI SAN ``spiffe://p``; ``*`` works as prefix, suffix or alone. On a TCP
listener a DENY rule drops its HTTP-only fields (so it denies more), as Istio does.

Not covered (a policy using them is skipped and reported, never widened or narrowed
silently): ALLOW, AUDIT and CUSTOM actions, ``when`` conditions, IP blocks and request
principals.

The local mesh listens on loopback ports of its own, not on the workload's port: Istio's
``ports`` are mapped to the sidecar's inbound listener port (``port_map``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshwatch.istio.policies import HTTP_ONLY_FIELDS
from meshwatch.policy.simulating import is_dry_run, selects

SOURCE_FIELDS = frozenset({"principals", "notPrincipals", "namespaces", "notNamespaces"})
OPERATION_FIELDS = frozenset(
    {"ports", "notPorts", "paths", "notPaths", "methods", "notMethods", "hosts", "notHosts"}
)
ANY: dict[str, Any] = {"any": True}


class Unsupported(ValueError):
    """The policy uses something this renderer does not translate."""


@dataclass(frozen=True, slots=True)
class Workload:
    """The sidecar being configured."""

    namespace: str
    labels: Mapping[str, str]
    port_map: Mapping[int, int]  # Istio (workload) port -> inbound listener port
    http: bool = True
    root_namespace: str = "istio-system"


RULE_KEY = re.compile(r"ns\[([^\]]+)\]-policy\[([^\]]+)\]-rule\[(\d+)\]")
"""Envoy policy keys name the Istio policy and rule they come from, as istiod's do."""


def rule_key(namespace: str, name: str, index: int) -> str:
    return f"ns[{namespace}]-policy[{name}]-rule[{index}]"


@dataclass
class Rendered:
    rules: dict[str, Any] = field(default_factory=dict)  # rule key -> Envoy Policy
    shadow: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def enforced_policies(self) -> list[str]:
        """Names of the Istio policies whose rules are enforced (not shadow)."""
        return sorted({m.group(2) for m in map(RULE_KEY.fullmatch, self.rules) if m})


def string_match(pattern: str, prefix: str = "") -> dict[str, Any]:
    """An Istio string pattern as an Envoy ``StringMatcher``."""
    if pattern == "*":
        return {"safe_regex": {"regex": ".+"}}
    if pattern.endswith("*"):
        return {"prefix": prefix + pattern[:-1]}
    if pattern.startswith("*"):
        return {"suffix": pattern[1:]}
    return {"exact": prefix + pattern}


def _or(items: list[dict[str, Any]], key: str, inner: str) -> dict[str, Any]:
    return items[0] if len(items) == 1 else {key: {inner: items}}


def _principal(source: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(source) - SOURCE_FIELDS
    if unknown:
        raise Unsupported(f"source fields {sorted(unknown)}")
    ids: list[dict[str, Any]] = []
    for name, value in source.items():
        patterns = [str(v) for v in value]
        if name in ("principals", "notPrincipals"):
            one = [
                {"authenticated": {"principal_name": string_match(p, "spiffe://")}}
                for p in patterns
            ]
        else:
            one = [
                {
                    "authenticated": {
                        "principal_name": {
                            "safe_regex": {"regex": f"^spiffe://[^/]+/ns/{_regex(p)}/.*$"}
                        }
                    }
                }
                for p in patterns
            ]
        matcher = _or(one, "or_ids", "ids")
        ids.append({"not_id": matcher} if name.startswith("not") else matcher)
    return _or(ids, "and_ids", "ids") if ids else ANY


def _regex(pattern: str) -> str:
    if pattern == "*":
        return "[^/]+"
    body = re.escape(pattern.strip("*"))
    if pattern.endswith("*"):
        return body + "[^/]*"
    if pattern.startswith("*"):
        return "[^/]*" + body
    return body


def _permission(operation: Mapping[str, Any], workload: Workload) -> dict[str, Any]:
    unknown = set(operation) - OPERATION_FIELDS
    if unknown:
        raise Unsupported(f"operation fields {sorted(unknown)}")
    rules: list[dict[str, Any]] = []
    for name, value in operation.items():
        patterns = [str(v) for v in value]
        if name in HTTP_ONLY_FIELDS and not workload.http:
            continue  # Istio drops HTTP-only fields of a DENY rule on TCP: it denies more
        base = name[3].lower() + name[4:] if name.startswith("not") else name
        one: list[dict[str, Any]]
        if base == "ports":
            one = [{"destination_port": workload.port_map.get(int(p), int(p))} for p in patterns]
        elif base == "paths":
            one = [{"url_path": {"path": string_match(p)}} for p in patterns]
        elif base == "methods":
            one = [
                {"header": {"name": ":method", "string_match": string_match(p)}} for p in patterns
            ]
        else:  # hosts
            one = [
                {
                    "header": {
                        "name": ":authority",
                        "string_match": {**string_match(p), "ignore_case": True},
                    }
                }
                for p in patterns
            ]
        matcher = _or(one, "or_rules", "rules")
        rules.append({"not_rule": matcher} if name.startswith("not") else matcher)
    return _or(rules, "and_rules", "rules") if rules else ANY


def applies(policy: Mapping[str, Any], workload: Workload) -> bool:
    return selects(policy, workload.namespace, workload.labels, workload.root_namespace)


def render_policy(policy: Mapping[str, Any], workload: Workload) -> list[dict[str, Any]]:
    """One Envoy ``Policy`` per Istio rule (``Unsupported`` for what is not covered)."""
    spec = policy.get("spec") or {}
    action = str(spec.get("action") or "ALLOW").upper()
    if action != "DENY":
        raise Unsupported(f"action {action}")
    out = []
    for rule in spec.get("rules") or []:
        if rule.get("when"):
            raise Unsupported("when conditions")
        sources = [_principal(s.get("source") or {}) for s in rule.get("from") or []]
        operations = [_permission(o.get("operation") or {}, workload) for o in rule.get("to") or []]
        out.append(
            {
                "permissions": [_or(operations, "or_rules", "rules")] if operations else [ANY],
                "principals": [_or(sources, "or_ids", "ids")] if sources else [ANY],
            }
        )
    return out


def render(policies: Sequence[Mapping[str, Any]], workload: Workload) -> Rendered:
    """The RBAC ``rules`` and ``shadow_rules`` policies of every DENY that applies."""
    out = Rendered()
    for policy in sorted(
        policies,
        key=lambda p: (
            (p.get("metadata") or {}).get("namespace", ""),
            (p.get("metadata") or {}).get("name", ""),
        ),
    ):
        if not applies(policy, workload):
            continue
        meta = policy.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
        try:
            rendered = render_policy(policy, workload)
        except (Unsupported, ValueError, TypeError, AttributeError) as exc:
            out.skipped.append(f"{namespace}/{name}: {exc}")
            continue
        target = out.shadow if is_dry_run(policy) else out.rules
        for i, envoy_policy in enumerate(rendered):
            target[rule_key(namespace, name, i)] = envoy_policy
    return out


def http_filter(rendered: Rendered) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "DENY", "policies": rendered.rules},
            "shadow_rules": {"action": "DENY", "policies": rendered.shadow},
            "shadow_rules_stat_prefix": "istio_dry_run_",
        },
    }


def network_filter(rendered: Rendered) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
            "stat_prefix": "tcp.",
            "rules": {"action": "DENY", "policies": rendered.rules},
            "shadow_rules": {"action": "DENY", "policies": rendered.shadow},
            "shadow_rules_stat_prefix": "istio_dry_run_",
        },
    }
