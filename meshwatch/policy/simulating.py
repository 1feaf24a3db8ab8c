"""Istio's authorization evaluation, for the collateral simulation.

For a request to a workload, the policies that apply are those in its namespace (or the root
namespace) whose selector matches its labels. Istio evaluates CUSTOM first, then DENY, then
ALLOW: any matching DENY denies; if any ALLOW policy applies, the request must match one of
them; otherwise it is allowed. Within a rule, ``from``, ``to`` and ``when`` are ANDed; the
entries of a list are ORed; within one source or operation the fields are ANDed.

Documented departures, each toward denying more (so the simulation errs on the side of
keeping a policy in dry-run):

* CUSTOM policies delegate to an external authorizer that cannot be consulted here; a call
  their rules match is reported as *delegated*, never as allowed by meshwatch.
* On a TCP request, a DENY rule ignores its HTTP-only fields (it matches more, as Istio does)
  and an ALLOW rule that uses them never matches.
* ``when`` conditions and IP blocks are not evaluated: in a DENY rule they count as matching,
  in an ALLOW rule as not matching. meshwatch never emits them.
* Policies carrying ``istio.io/dry-run: "true"`` are evaluated only when asked to
  (``include_dry_run``), as Istio logs but does not enforce them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshwatch.istio.policies import HTTP_ONLY_FIELDS
from meshwatch.policy.patterns import any_match

DRY_RUN_ANNOTATION = "istio.io/dry-run"


@dataclass(frozen=True, slots=True)
class Request:
    """One call as authorization sees it at the destination's sidecar."""

    source: str  # node id, for reports
    principal: str  # AuthorizationPolicy form (no spiffe://); "" for plaintext
    namespace: str  # the caller's namespace, from its identity
    destination: str
    destination_namespace: str
    destination_labels: tuple[tuple[str, str], ...]
    port: int
    method: str = "GET"
    path: str = "/"
    host: str = ""
    http: bool = True

    def describe(self) -> str:
        what = f"{self.method} {self.path}" if self.http else "tcp"
        return f"{self.source} -> {self.destination}:{self.port} {what}"


class Verdict(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    DELEGATED = "delegated"  # a CUSTOM policy decides


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    policy: str = ""  # namespace/name of the policy that decided, if one did


def _meta(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = policy.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = policy.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def is_dry_run(policy: Mapping[str, Any]) -> bool:
    annotations = _meta(policy).get("annotations") or {}
    return str(annotations.get(DRY_RUN_ANNOTATION, "")).lower() == "true"


def selects(
    policy: Mapping[str, Any], namespace: str, labels: Mapping[str, str], root_namespace: str
) -> bool:
    """Whether ``policy`` applies to a workload: it lives in the workload's namespace (or
    the root namespace) and its ``selector.matchLabels``, if any, are among the labels."""
    if str(_meta(policy).get("namespace") or "default") not in (namespace, root_namespace):
        return False
    selector = _spec(policy).get("selector")
    match_labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    return all(labels.get(str(k)) == str(v) for k, v in (match_labels or {}).items())


def applies(policy: Mapping[str, Any], request: Request, root_namespace: str) -> bool:
    return selects(
        policy, request.destination_namespace, dict(request.destination_labels), root_namespace
    )


def _values(block: Mapping[str, Any], name: str) -> list[str] | None:
    value = block.get(name)
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _source_matches(source: Mapping[str, Any], request: Request, deny: bool) -> bool:
    checks = (
        ("principals", request.principal, True),
        ("notPrincipals", request.principal, False),
        ("namespaces", request.namespace, True),
        ("notNamespaces", request.namespace, False),
    )
    for name, value, positive in checks:
        patterns = _values(source, name)
        if patterns is None:
            continue
        # a plaintext caller has no principal or namespace: it matches no positive list
        hit = bool(value) and any_match(patterns, value)
        if hit is not positive:
            return False
    unsupported = set(source) - {c[0] for c in checks}
    return deny or not unsupported


def _operation_matches(operation: Mapping[str, Any], request: Request, deny: bool) -> bool:
    fields = {
        "hosts": request.host,
        "notHosts": request.host,
        "ports": str(request.port),
        "notPorts": str(request.port),
        "methods": request.method,
        "notMethods": request.method,
        "paths": request.path.partition("?")[0],
        "notPaths": request.path.partition("?")[0],
    }
    for name, value in fields.items():
        patterns = _values(operation, name)
        if patterns is None:
            continue
        if not request.http and name in HTTP_ONLY_FIELDS:
            if deny:
                continue  # Istio drops HTTP-only fields of a DENY rule on TCP: it denies more
            return False  # ... and an ALLOW rule using them never matches TCP
        hit = any_match(patterns, value)
        if hit is name.startswith("not"):
            return False
    return True


def _any_entry(
    entries: Any,
    key: str,
    matches: Any,
    request: Request,
    deny: bool,
) -> bool:
    """``from`` or ``to``: absent or empty matches everything, else any entry must match."""
    if not isinstance(entries, list) or not entries:
        return True
    return any(matches(e.get(key) or {}, request, deny) for e in entries if isinstance(e, Mapping))


def rule_matches(rule: Mapping[str, Any], request: Request, deny: bool) -> bool:
    if not _any_entry(rule.get("from"), "source", _source_matches, request, deny):
        return False
    if not _any_entry(rule.get("to"), "operation", _operation_matches, request, deny):
        return False
    if rule.get("when"):
        return deny
    return True


def _policy_matches(policy: Mapping[str, Any], request: Request, deny: bool) -> bool:
    rules = _spec(policy).get("rules")
    if not isinstance(rules, list):
        return False  # no rules: matches nothing (an ALLOW without rules allows nothing)
    return any(rule_matches(r if isinstance(r, Mapping) else {}, request, deny) for r in rules)


def _name(policy: Mapping[str, Any]) -> str:
    meta = _meta(policy)
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def evaluate(
    policies: Sequence[Mapping[str, Any]],
    request: Request,
    root_namespace: str = "istio-system",
    include_dry_run: bool = False,
) -> Decision:
    """Istio's decision for ``request`` under ``policies`` (CUSTOM, then DENY, then ALLOW)."""
    relevant = [
        p
        for p in policies
        if applies(p, request, root_namespace) and (include_dry_run or not is_dry_run(p))
    ]
    by_action: dict[str, list[Mapping[str, Any]]] = {"CUSTOM": [], "DENY": [], "ALLOW": []}
    for p in relevant:
        action = str(_spec(p).get("action") or "ALLOW").upper()
        by_action.setdefault(action, []).append(p)
    for p in by_action["CUSTOM"]:
        if _policy_matches(p, request, deny=True):
            return Decision(Verdict.DELEGATED, _name(p))
    for p in by_action["DENY"]:
        if _policy_matches(p, request, deny=True):
            return Decision(Verdict.DENIED, _name(p))
    allows = by_action["ALLOW"]
    if not allows:
        return Decision(Verdict.ALLOWED)
    for p in allows:
        if _policy_matches(p, request, deny=False):
            return Decision(Verdict.ALLOWED, _name(p))
    return Decision(Verdict.DENIED, "(no ALLOW policy matched)")
