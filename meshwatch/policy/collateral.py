"""The collateral simulation: would a proposed policy deny any call the mesh makes normally?

Normal calls are every learned edge with each of its learned path templates (as a concrete
example path), plus recent calls on edges that are not anomalous. Each is evaluated with
Istio's order (``simulating.evaluate``) under the existing policies, with and without the
proposed one; a call the proposal turns from allowed to denied is collateral. A caller whose
identity is not known cannot be checked, and says so: that is reported as *unverified*,
which keeps a policy in dry-run just as collateral does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import Call, Protocol, Workload
from meshwatch.detection.baseline import Baseline
from meshwatch.policy.params import DefenceParams
from meshwatch.policy.patterns import example_path
from meshwatch.policy.planning import Actors, authz_principal, namespace_of
from meshwatch.policy.simulating import Request, Verdict, evaluate, rule_matches
from meshwatch.policy.threats import EXTERNAL_PREFIX

MAX_EXAMPLES = 5


@dataclass(slots=True)
class NormalTraffic:
    """Normal requests, indexed by (destination namespace, label, value) for fast lookup."""

    index: dict[tuple[str, str, str], list[Request]] = field(
        default_factory=lambda: defaultdict(list)
    )
    unverified: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    count: int = 0

    def add(self, request: Request) -> None:
        self.count += 1
        for key, value in request.destination_labels:
            self.index[(request.destination_namespace, key, value)].append(request)

    def to(self, namespace: str, selector: Sequence[tuple[str, str]]) -> list[Request]:
        if not selector:
            return [r for (ns, _, _), rs in self.index.items() if ns == namespace for r in rs]
        first, *rest = selector
        wanted = dict(rest)
        return [
            r
            for r in self.index.get((namespace, *first), [])
            if all(dict(r.destination_labels).get(k) == v for k, v in wanted.items())
        ]


def _destination(
    node_id: str, actor: Workload | None, params: DefenceParams
) -> tuple[str, str, tuple[tuple[str, str], ...], str] | None:
    """(node, namespace, labels, host) of where the call is authorized."""
    if node_id.startswith(EXTERNAL_PREFIX):
        gateway = params.egress_gateway
        if gateway is None:
            return None
        return (
            gateway.node_id,
            gateway.namespace,
            gateway.labels,
            node_id[len(EXTERNAL_PREFIX) :],
        )
    if actor is None:
        return None
    labels = actor.labels or ((("app", actor.app),) if actor.app else ())
    return node_id, namespace_of(node_id, actor), labels, ""


def normal_traffic(
    baseline: Baseline | None,
    actors: Actors,
    recent: Iterable[Call],
    params: DefenceParams,
    destinations: Collection[str] | None = None,
) -> NormalTraffic:
    """The normal calls, to ``destinations`` only when given (the nodes proposed policies
    protect: a reconcile replays the calls that matter, not the whole baseline)."""
    traffic = NormalTraffic()

    def wanted(node: str) -> bool:
        return destinations is None or node in destinations

    def actor(node_id: str) -> Workload | None:
        found = actors(node_id)
        if found is None and baseline is not None:
            found = baseline.actors.get(node_id)
        return found

    if baseline is not None:
        for edge in sorted(baseline.known_edges):
            where = _destination(edge.destination, actor(edge.destination), params)
            if where is None or not wanted(where[0]):
                continue
            node, namespace, labels, host = where
            source = actor(edge.source)
            if source is None or not source.principal:
                traffic.unverified[node].add(edge.source)
                continue
            learned = baseline.edges.get(edge)
            paths = sorted(learned.paths) if learned is not None else []
            common = (
                edge.source,
                authz_principal(source.principal),
                namespace_of(edge.source, source),
                node,
                namespace,
                labels,
                edge.port,
            )
            if not paths:  # an edge with no paths carried no HTTP: TCP
                traffic.add(Request(*common, method="", path="", host=host, http=False))
            for template in paths:
                traffic.add(Request(*common, path=example_path(template), host=host))
    for call in recent:
        where = _destination(call.destination.id, call.destination, params)
        if where is None or not call.source.principal or not wanted(where[0]):
            continue
        node, namespace, labels, host = where
        traffic.add(
            Request(
                call.source.id,
                authz_principal(call.source.principal),
                namespace_of(call.source.id, call.source),
                node,
                namespace,
                labels,
                call.port,
                method=call.method,
                path=call.path,
                host=host or call.destination.workload,
                http=call.protocol is Protocol.HTTP,
            )
        )
    return traffic


@dataclass(frozen=True, slots=True)
class Collateral:
    checked: int
    denied: int
    examples: tuple[str, ...]
    unverified: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.denied == 0 and not self.unverified

    def summary(self) -> str:
        if self.clean:
            return f"no collateral: {self.checked} normal calls checked, none denied"
        parts = []
        if self.denied:
            parts.append(
                f"would deny {self.denied} of {self.checked} normal calls, e.g. "
                + "; ".join(self.examples)
            )
        if self.unverified:
            parts.append(
                "cannot verify callers whose identity is unknown: "
                + ", ".join(self.unverified[:MAX_EXAMPLES])
            )
        return "; ".join(parts)


def collateral(
    proposed: Mapping[str, Any],
    destination: str,
    traffic: NormalTraffic,
    existing: Sequence[Mapping[str, Any]],
    root_namespace: str,
) -> Collateral:
    """Normal calls ``proposed`` (evaluated as enforced) would newly deny."""
    meta = proposed.get("metadata") or {}
    spec = proposed.get("spec") or {}
    selector = tuple(sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    candidates = traffic.to(str(meta.get("namespace", "")), selector)
    rules = [r for r in spec.get("rules") or [] if isinstance(r, Mapping)]
    denied = 0
    examples: list[str] = []
    for request in candidates:
        if not any(rule_matches(r, request, deny=True) for r in rules):
            continue
        if existing and evaluate(existing, request, root_namespace).verdict is not Verdict.ALLOWED:
            continue  # denied (or delegated) already, with or without this policy
        denied += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append(request.describe())
    return Collateral(
        len(candidates),
        denied,
        tuple(examples),
        tuple(sorted(traffic.unverified.get(destination, ()))),
    )
