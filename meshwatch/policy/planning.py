"""The planner: tracked threats + who is who + the baseline → the desired DENY policies.

Pure and deterministic: the same input gives the same policies, names and rule order, so a
reconcile that changes nothing writes nothing. At most one policy per destination workload,
in its namespace, selecting it by its stable identity label (``app``, else Istio's
canonical name), never by ``version`` or ``pod-template-hash``, which a rollout changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meshwatch.calls import EdgeKey, Workload
from meshwatch.detection.baseline import Baseline
from meshwatch.identity.spiffe import SCHEME
from meshwatch.policy.params import DefenceParams
from meshwatch.policy.patterns import any_match, learned_path_patterns
from meshwatch.policy.threats import EXTERNAL_PREFIX, Threat, Tracked

SELECTOR_LABELS = ("app", "service.istio.io/canonical-name", "app.kubernetes.io/name")
NAME_PREFIX = "meshwatch-deny-"
Actors = Callable[[str], Workload | None]


@dataclass(frozen=True, slots=True)
class DenyRule:
    """One ``rules[]`` entry: a caller, and what of the destination it may not reach."""

    principal: str
    ports: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def to_spec(self) -> dict[str, Any]:
        operation: dict[str, Any] = {}
        if self.hosts:
            operation["hosts"] = list(self.hosts)
        if self.ports:
            operation["ports"] = list(self.ports)
        if self.not_paths:
            operation["notPaths"] = list(self.not_paths)
        rule: dict[str, Any] = {"from": [{"source": {"principals": [self.principal]}}]}
        if operation:
            rule["to"] = [{"operation": operation}]
        return rule


@dataclass(frozen=True, slots=True)
class PlannedRule:
    rule: DenyRule
    keys: tuple[tuple[EdgeKey, Threat], ...]


@dataclass(frozen=True, slots=True)
class PlannedPolicy:
    name: str
    namespace: str
    destination: str  # node id (or the egress gateway) this policy protects
    selector: tuple[tuple[str, str], ...]
    rules: tuple[PlannedRule, ...]

    def spec(self) -> dict[str, Any]:
        return {
            "action": "DENY",
            "selector": {"matchLabels": dict(self.selector)},
            "rules": [r.rule.to_spec() for r in self.rules],
        }

    @property
    def keys(self) -> list[tuple[EdgeKey, Threat]]:
        return [k for r in self.rules for k in r.keys]


REFUSAL_REASONS = (
    "revoked",
    "performance",
    "alert-only",
    "protected-namespace",
    "no-identity",
    "protected-principal",
    "unknown-workload",
    "no-selector",
    "unbounded-paths",
    "not-enforceable",
    "foreign-object",
    "cap-rate",
    "cap-policies",
    "invalid",
)
"""Every ``Refusal.reason`` (the metric label; a test holds the code to this list)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A tracked threat meshwatch will not (or cannot) deny, and why. Never silent."""

    key: tuple[EdgeKey, Threat]
    reason: str  # a short code: the metric label
    detail: str
    policy: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    policies: list[PlannedPolicy]
    refusals: list[Refusal]


def policy_name(destination: str) -> str:
    """Deterministic DNS-1123 name for the one policy on ``destination``."""
    base = destination.rpartition("/")[2]
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
    digest = hashlib.sha256(destination.encode()).hexdigest()[:8]
    if slug == base and len(NAME_PREFIX + slug) <= 63 and slug:
        return NAME_PREFIX + slug
    return f"{NAME_PREFIX}{slug[:36].strip('-') or 'x'}-{digest}"


def authz_principal(principal: str) -> str:
    return principal[len(SCHEME) :] if principal.startswith(SCHEME) else principal


def selector_labels(actor: Workload) -> tuple[tuple[str, str], ...]:
    labels = dict(actor.labels)
    for name in SELECTOR_LABELS:
        if labels.get(name):
            return ((name, labels[name]),)
    if actor.app:
        return (("app", actor.app),)
    return ()


def namespace_of(node_id: str, actor: Workload | None) -> str:
    if actor is not None and actor.namespace:
        return actor.namespace
    namespace, sep, _ = node_id.partition("/")
    return namespace if sep and namespace not in ("external", "principal") else ""


class _Planner:
    def __init__(self, actors: Actors, baseline: Baseline | None, params: DefenceParams) -> None:
        self.actors = actors
        self.baseline = baseline
        self.params = params
        self.refusals: list[Refusal] = []
        # (namespace, destination, selector) -> rule -> keys
        self.targets: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[DenyRule, list[Any]]]
        self.targets = defaultdict(lambda: defaultdict(list))

    def refuse(self, item: Tracked, reason: str, detail: str) -> None:
        self.refusals.append(Refusal(item.key, reason, detail))

    def consider(self, item: Tracked) -> None:
        edge, threat = item.edge, item.threat
        if item.revoked:
            self.refuse(item, "revoked", "revoked by an operator; lifted when the anomaly ends")
            return
        if threat is Threat.PERFORMANCE:
            self.refuse(item, "performance", "latency alone is performance, never denied")
            return
        if threat is Threat.KNOWN_EDGE and not self.params.deny_known_edges:
            self.refuse(
                item,
                "alert-only",
                "a statistical shift on a known edge is alert-only (deny_known_edges is off)",
            )
            return
        source = self.actors(edge.source)
        protected = self.params.namespaces_never_denied
        ns = namespace_of(edge.source, source)
        if ns in protected:
            self.refuse(item, "protected-namespace", f"caller namespace {ns} is protected")
            return
        principal = authz_principal(source.principal) if source is not None else ""
        principal = principal or item.principal
        if not principal:
            self.refuse(
                item,
                "no-identity",
                f"caller {edge.source} has no mTLS identity an AuthorizationPolicy can name",
            )
            return
        if any_match(self.params.protected_principals, principal):
            self.refuse(item, "protected-principal", f"caller {principal} is allow-listed")
            return
        if edge.destination.startswith(EXTERNAL_PREFIX):
            self.external(item, principal)
            return
        destination = self.actors(edge.destination)
        ns = namespace_of(edge.destination, destination) or item.destination_namespace
        if ns in protected:
            self.refuse(item, "protected-namespace", f"callee namespace {ns} is protected")
            return
        selector = selector_labels(destination) if destination is not None else ()
        selector = selector or item.destination_selector
        if not ns or (destination is None and not selector):
            self.refuse(item, "unknown-workload", f"{edge.destination} is not a known workload")
            return
        if not selector:
            self.refuse(item, "no-selector", f"{edge.destination} has no app label to select it by")
            return
        ports = (str(edge.port),) if edge.port > 0 else ()
        rule = DenyRule(principal, ports)
        if threat is Threat.UNSEEN_PATHS:
            learned = self.baseline.edges.get(edge) if self.baseline is not None else None
            patterns = learned_path_patterns(learned.paths) if learned is not None else []
            if not patterns or "/*" in patterns or "*" in patterns:
                self.refuse(
                    item,
                    "unbounded-paths",
                    f"the learned paths of {edge} cannot be told apart from new ones",
                )
                return
            rule = DenyRule(principal, ports, tuple(patterns))
        item.principal, item.destination_namespace, item.destination_selector = (
            principal,
            ns,
            selector,
        )
        self.targets[(ns, edge.destination, selector)][rule].append(item.key)

    def external(self, item: Tracked, principal: str) -> None:
        gateway = self.params.egress_gateway
        if gateway is None:
            self.refuse(item, "not-enforceable", "not enforceable: no egress gateway configured")
            return
        item.principal = principal
        host = item.edge.destination[len(EXTERNAL_PREFIX) :]
        rule = DenyRule(principal, hosts=(host,))
        self.targets[(gateway.namespace, gateway.node_id, gateway.labels)][rule].append(item.key)

    def policies(self) -> list[PlannedPolicy]:
        out = []
        for (ns, destination, selector), rules in sorted(self.targets.items()):
            planned = tuple(
                PlannedRule(rule, tuple(sorted(keys)))
                for rule, keys in sorted(
                    rules.items(), key=lambda kv: json.dumps(kv[0].to_spec(), sort_keys=True)
                )
            )
            out.append(PlannedPolicy(policy_name(destination), ns, destination, selector, planned))
        return out


def plan(
    tracked: Sequence[Tracked], actors: Actors, baseline: Baseline | None, params: DefenceParams
) -> Plan:
    """The desired policies for every tracked threat, and a refusal for each one not denied."""
    planner = _Planner(actors, baseline, params)
    for item in sorted(tracked, key=lambda t: (t.first_raised, t.edge, t.threat)):
        planner.consider(item)
    return Plan(planner.policies(), planner.refusals)
