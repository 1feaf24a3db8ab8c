"""What an operator decides about defence: the mode, what is never denied, and the limits.

The defaults are the safe ones: ``dry-run`` (Istio evaluates and logs, nothing is blocked),
Istio's and Kubernetes' own namespaces protected, at most 50 managed policies and 10 new
denies a minute, a 15-minute TTL, no deny on a known edge, and zero tolerated collateral.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

ALWAYS_PROTECTED = frozenset({"istio-system", "kube-system"})


class DefenceMode(enum.StrEnum):
    OFF = "off"
    """Plans are computed and shown; nothing is written anywhere."""
    DRY_RUN = "dry-run"
    """Policies are written with ``istio.io/dry-run: "true"``: evaluated, logged, not enforced."""
    ENFORCE = "enforce"
    """Policies that pass every guard are enforced."""


@dataclass(frozen=True, slots=True)
class EgressGateway:
    """Where a new external host can be denied: the egress gateway's namespace and labels."""

    namespace: str
    labels: tuple[tuple[str, str], ...]

    @property
    def node_id(self) -> str:
        """The gateway as a destination in plans and simulation."""
        return f"{self.namespace}/egress-gateway"

    @classmethod
    def parse(cls, text: str) -> EgressGateway:
        """``NAMESPACE:key=value[,key=value]``, e.g. ``istio-system:istio=egressgateway``."""
        namespace, sep, selector = text.partition(":")
        pairs = [p.split("=", 1) for p in selector.split(",") if p.strip()]
        if not sep or not namespace.strip() or not pairs or any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"expected NAMESPACE:key=value[,key=value] (e.g. istio-system:istio=egressgateway), got {text!r}"
            )
        return cls(namespace.strip(), tuple(sorted((k.strip(), v.strip()) for k, v in pairs)))


@dataclass(frozen=True, slots=True)
class DefenceParams:
    mode: DefenceMode = DefenceMode.DRY_RUN
    own_namespace: str = "meshwatch"
    protected_namespaces: frozenset[str] = field(default_factory=frozenset)
    """Never denied, as caller or callee, besides ``istio-system``, ``kube-system`` and
    meshwatch's own namespace."""
    protected_principals: frozenset[str] = field(default_factory=frozenset)
    """Callers never denied (Istio principal syntax, ``*`` as prefix or suffix), e.g.
    Prometheus and health checkers."""
    max_policies: int = 50
    max_denies_per_minute: int = 10
    ttl: float = 900.0
    """A deny lives this long after its anomaly was last active."""
    deny_known_edges: bool = False
    """Allow an edge-wide deny for volume, bytes or error anomalies on a known edge."""
    egress_gateway: EgressGateway | None = None
    collateral_threshold: int = 0
    """Normal calls a policy may deny and still be enforced (0: none)."""
    root_namespace: str = "istio-system"

    @property
    def namespaces_never_denied(self) -> frozenset[str]:
        return ALWAYS_PROTECTED | {self.own_namespace} | self.protected_namespaces
