"""Defence as documents (``/api/v1/policies``, the CLI) and as a snapshot for metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from meshwatch.policy.controlling import Actions, PolicyStatus
from meshwatch.policy.objects import iso
from meshwatch.policy.planning import Refusal


class SimulationDoc(TypedDict):
    checked: int
    denied: int
    examples: list[str]
    unverified: list[str]
    summary: str


class PolicyDoc(TypedDict):
    name: str
    namespace: str
    destination: str
    mode: str
    state: str
    reason: str
    created: str
    expires: str
    anomaly_ids: list[str]
    edges: list[dict[str, Any]]
    simulation: SimulationDoc
    object: dict[str, Any]


class RefusalDoc(TypedDict):
    source: str
    target: str
    port: int
    threat: str
    reason: str
    detail: str
    policy: str


class PoliciesDoc(TypedDict):
    mode: str
    sink: str | None
    policies: list[PolicyDoc]
    refused: list[RefusalDoc]
    actions: dict[str, int]
    refusals_total: dict[str, int]
    last_error: str | None


def policy_doc(status: PolicyStatus, mode: str) -> PolicyDoc:
    sim = status.simulation
    return {
        "name": status.name,
        "namespace": status.namespace,
        "destination": status.destination,
        "mode": mode,
        "state": status.state,
        "reason": status.reason,
        "created": iso(status.created),
        "expires": iso(status.expires),
        "anomaly_ids": list(status.anomaly_ids),
        "edges": [
            {"source": e.source, "target": e.destination, "port": e.port} for e in status.edges
        ],
        "simulation": {
            "checked": sim.checked,
            "denied": sim.denied,
            "examples": list(sim.examples),
            "unverified": list(sim.unverified),
            "summary": sim.summary(),
        },
        "object": dict(status.object),
    }


def refusal_doc(refusal: Refusal) -> RefusalDoc:
    edge, threat = refusal.key
    return {
        "source": edge.source,
        "target": edge.destination,
        "port": edge.port,
        "threat": threat.value,
        "reason": refusal.reason,
        "detail": refusal.detail,
        "policy": refusal.policy,
    }


@dataclass(frozen=True, slots=True)
class DefenceSnapshot:
    """What the metrics collector reads at scrape time."""

    mode: str
    policies: Mapping[str, int] = field(default_factory=dict)  # by state
    actions: Mapping[str, int] = field(default_factory=dict)
    refusals: Mapping[str, int] = field(default_factory=dict)


def policies_doc(
    actions: Actions,
    mode: str,
    sink: str | None,
    action_counts: Mapping[str, int],
    refusal_counts: Mapping[str, int],
    last_error: str | None,
) -> PoliciesDoc:
    return {
        "mode": mode,
        "sink": sink,
        "policies": [policy_doc(s, mode) for s in actions.policies],
        "refused": [refusal_doc(r) for r in actions.refusals],
        "actions": dict(action_counts),
        "refusals_total": dict(refusal_counts),
        "last_error": last_error,
    }
