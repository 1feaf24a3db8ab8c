"""Reading Istio security resources the way istiod does (pure helpers shared by checks)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshwatch.istio.resources import Resource, as_list, as_map

MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
SOURCE_FIELDS = (
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
)
OPERATION_FIELDS = (
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
)
HTTP_ONLY_FIELDS = frozenset(
    {
        "requestPrincipals",
        "notRequestPrincipals",
        "hosts",
        "notHosts",
        "methods",
        "notMethods",
        "paths",
        "notPaths",
    }
)
TCP_CONDITION_KEYS = (
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
    "connection.sni",
    "experimental.envoy.filters",
)
IDENTITY_FIELDS = frozenset({"principals", "notPrincipals", "namespaces", "notNamespaces"})


def action(policy: Resource) -> str:
    return str(policy.spec.get("action") or "ALLOW").upper()


def rules(policy: Resource) -> list[Mapping[str, Any]]:
    return [as_map(r) for r in as_list(policy.spec.get("rules"))]


def rule_fields(rule: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """Every (field, values) a rule matches on, from ``from``, ``to`` and ``when``."""
    for entry in as_list(rule.get("from")):
        source = as_map(as_map(entry).get("source"))
        for name in SOURCE_FIELDS:
            if name in source:
                yield name, as_list(source[name])
    for entry in as_list(rule.get("to")):
        operation = as_map(as_map(entry).get("operation"))
        for name in OPERATION_FIELDS:
            if name in operation:
                yield name, as_list(operation[name])
    for condition in as_list(rule.get("when")):
        condition = as_map(condition)
        key = str(condition.get("key", ""))
        if "values" in condition:
            yield f"when:{key}", as_list(condition["values"])
        if "notValues" in condition:
            yield f"when-not:{key}", as_list(condition["notValues"])


def is_http_only(field: str) -> bool:
    if field.startswith(("when:", "when-not:")):
        key = field.partition(":")[2]
        return not key.startswith(TCP_CONDITION_KEYS)
    return field in HTTP_ONLY_FIELDS


def selector(resource: Resource) -> Mapping[str, Any] | None:
    """``spec.selector`` (``None`` when the resource applies to its whole namespace)."""
    value = resource.spec.get("selector") or resource.spec.get("workloadSelector")
    if not isinstance(value, Mapping):
        return None
    labels = (
        as_map(value.get("matchLabels")) if "matchLabels" in value else as_map(value.get("labels"))
    )
    return {"matchLabels": labels} if labels else None


def mtls_mode(peer_authentication: Resource) -> str:
    return str(as_map(peer_authentication.spec.get("mtls")).get("mode") or "UNSET").upper()


def effective_namespace_mode(namespace_pa: list[Resource], mesh_pa: list[Resource]) -> str:
    """mTLS mode a namespace's workloads get without a workload-level policy (Istio's default
    with no PeerAuthentication at all is PERMISSIVE)."""
    for candidates in (namespace_pa, mesh_pa):
        for pa in candidates:
            if selector(pa) is None and mtls_mode(pa) != "UNSET":
                return mtls_mode(pa)
    return "PERMISSIVE"
