"""The defence controller: tracked threats in, the writes that make the sink match out.

Pure and synchronous; the runtime calls ``reconcile`` about once a second (and at once when
an anomaly is raised) with what the sink holds, then performs the returned writes. Every
guard is here, in this order:

1. expiry: a threat whose anomaly has not been active for ``ttl`` is forgotten;
2. the planner's refusals (mode of threat, protected namespaces and principals, identity);
3. the rate cap: at most ``max_denies_per_minute`` threats newly admitted a minute; the rest
   wait, listed as refused (``cap-rate``), and are admitted on a later reconcile;
4. the policy cap: at most ``max_policies`` managed policies; policies already written keep
   their place, new ones beyond the cap are refused (``cap-policies``);
5. ownership: an object of the same name that meshwatch does not manage is never touched
   (``foreign-object``);
6. the collateral simulation: in ``enforce`` mode a policy that would deny more normal calls
   than ``collateral_threshold``, or whose destination has callers of unknown identity, is
   written in dry-run instead, with the reason.

Nothing is dropped silently: every tracked threat ends as a written policy or a refusal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import Call, EdgeKey
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.baseline import Baseline
from meshwatch.policy.collateral import Collateral, collateral, normal_traffic
from meshwatch.policy.objects import ObservedPolicy, PolicyInvalid, render, tracked_from, validate
from meshwatch.policy.params import DefenceMode, DefenceParams
from meshwatch.policy.planning import Actors, PlannedPolicy, Refusal, plan
from meshwatch.policy.threats import Threat, Tracked, threat_of

Key = tuple[EdgeKey, Threat]
RATE_WINDOW = 60.0


class State:
    PLANNED = "planned"
    DRY_RUN = "dry-run"
    ENFORCED = "enforced"


@dataclass(frozen=True, slots=True)
class PolicyStatus:
    """One desired policy as the API and CLI show it."""

    name: str
    namespace: str
    destination: str
    state: str
    reason: str
    created: float
    expires: float
    anomaly_ids: tuple[str, ...]
    edges: tuple[EdgeKey, ...]
    simulation: Collateral
    object: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Actions:
    """What the sink must do, and the status of everything desired or refused."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)
    policies: list[PolicyStatus] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


class Defence:
    def __init__(self, params: DefenceParams) -> None:
        self.params = params
        self.tracked: dict[Key, Tracked] = {}
        self.admitted: set[Key] = set()
        self.admissions: deque[float] = deque()
        self.last = Actions()

    # -- what detection says -------------------------------------------------------------

    def raised(self, anomaly: Anomaly, now: float) -> None:
        threat = threat_of(anomaly)
        key = (anomaly.edge, threat)
        current = self.tracked.get(key)
        if current is None:
            self.tracked[key] = Tracked(
                anomaly.edge,
                threat,
                [anomaly.id],
                [anomaly.reason],
                first_raised=now,
                last_active=now,
                expires=now + self.params.ttl,
            )
            return
        current.anomaly_ids.append(anomaly.id)
        current.reasons = [*current.reasons[-2:], anomaly.reason]
        if not current.open:
            current.revoked = False  # a revoke lasts until the anomaly ends, not beyond
        current.open = True
        current.last_active = now
        current.expires = now + self.params.ttl

    def ended(self, anomaly: Anomaly, at: float) -> None:
        """The incident closed: its deny now lives ``ttl`` past the anomaly's last activity."""
        current = self.tracked.get((anomaly.edge, threat_of(anomaly)))
        if current is not None and anomaly.id in current.anomaly_ids:
            current.open = False
            current.last_active = max(current.last_active, anomaly.last_seen)
            current.expires = current.last_active + self.params.ttl

    def _on(self, edge: EdgeKey) -> Iterator[Tracked]:
        """The tracked threats on one edge (at most one per kind of threat)."""
        for threat in Threat:
            current = self.tracked.get((edge, threat))
            if current is not None:
                yield current

    def still_active(self, edges: Iterable[EdgeKey], now: float) -> None:
        """Edges whose incidents are still open: their denies persist."""
        for edge in edges:
            for current in self._on(edge):
                if current.open:
                    current.last_active = now
                    current.expires = now + self.params.ttl

    # -- what operators say ---------------------------------------------------------------

    def approve(self, source: str, destination: str, port: int | None) -> list[EdgeKey]:
        """Accept edges as normal: their threats and denies are lifted at the next reconcile.
        (That they raise nothing again is detection's part: the baseline holds approvals.)"""
        lifted = [
            k
            for k in self.tracked
            if k[0].source == source
            and k[0].destination == destination
            and (port is None or k[0].port == port)
        ]
        for key in lifted:
            del self.tracked[key]
            self.admitted.discard(key)
        return sorted({k[0] for k in lifted})

    def revoke(self, name: str | None, namespace: str | None = None) -> list[str]:
        """Withdraw one desired policy (``None``: all of them) until its anomalies end."""
        revoked = []
        for status in self.last.policies:
            if (name is None or status.name == name) and namespace in (None, status.namespace):
                revoked.append(f"{status.namespace}/{status.name}")
                for edge in status.edges:
                    for current in self._on(edge):
                        current.revoked = True
        return revoked

    def adopt(self, observed: Iterable[ObservedPolicy]) -> int:
        """Take over the threats of managed policies found at start (after a restart)."""
        adopted = 0
        for policy in observed:
            if not policy.managed:
                continue
            for item in tracked_from(policy, self.params.ttl):
                if item.key not in self.tracked:
                    self.tracked[item.key] = item
                    self.admitted.add(item.key)
                    adopted += 1
        return adopted

    # -- the reconcile ----------------------------------------------------------------------

    def reconcile(
        self,
        now: float,
        actors: Actors,
        baseline: Baseline | None,
        observed: Mapping[tuple[str, str], ObservedPolicy],
        recent: Callable[[], Iterable[Call]],
        writable: bool,
    ) -> Actions:
        """The writes that make ``observed`` match what is desired at ``now``."""
        params = self.params
        for key in [k for k, t in self.tracked.items() if t.expires <= now]:
            del self.tracked[key]
            self.admitted.discard(key)
        planned = plan(list(self.tracked.values()), actors, baseline, params)
        refusals = list(planned.refusals)
        policies = self._rate_capped(planned.policies, now, refusals)
        policies = self._policy_capped(policies, observed, refusals)
        existing = [p.as_object() for p in observed.values() if not p.managed]
        traffic = (
            normal_traffic(baseline, actors, recent(), params, {p.destination for p in policies})
            if policies
            else None
        )
        actions = Actions(refusals=refusals)
        desired: set[tuple[str, str]] = set()
        for policy in policies:
            found = observed.get((policy.namespace, policy.name))
            if found is not None and not found.managed:
                for key in policy.keys:
                    refusals.append(
                        Refusal(
                            key,
                            "foreign-object",
                            f"{policy.namespace}/{policy.name} exists and is not managed by meshwatch",
                            policy.name,
                        )
                    )
                continue
            status = self._status(policy, found, traffic, existing, writable, refusals)
            if status is None:
                continue
            desired.add((policy.namespace, policy.name))
            actions.policies.append(status)
            if (
                writable
                and params.mode is not DefenceMode.OFF
                and _differs(found, status, params.ttl)
            ):
                actions.apply.append(dict(status.object))
        if writable:  # "off" writes nothing and removes what meshwatch wrote before
            actions.delete.extend(
                sorted(k for k, p in observed.items() if p.managed and k not in desired)
            )
        self.last = actions
        return actions

    def _rate_capped(
        self, policies: Sequence[PlannedPolicy], now: float, refusals: list[Refusal]
    ) -> list[PlannedPolicy]:
        while self.admissions and self.admissions[0] <= now - RATE_WINDOW:
            self.admissions.popleft()
        limit = self.params.max_denies_per_minute
        ordered = sorted(
            {k for p in policies for k in p.keys},
            key=lambda k: (self.tracked[k].first_raised, k),
        )
        for key in ordered:
            if key in self.admitted:
                continue
            if len(self.admissions) < limit:
                self.admitted.add(key)
                self.admissions.append(now)
            else:
                refusals.append(
                    Refusal(
                        key,
                        "cap-rate",
                        f"{limit} new denies a minute reached: waiting for the next slot",
                    )
                )
        out = []
        for policy in policies:
            rules = tuple(r for r in policy.rules if all(k in self.admitted for k in r.keys))
            if rules:
                out.append(
                    PlannedPolicy(
                        policy.name, policy.namespace, policy.destination, policy.selector, rules
                    )
                )
        return out

    def _policy_capped(
        self,
        policies: Sequence[PlannedPolicy],
        observed: Mapping[tuple[str, str], ObservedPolicy],
        refusals: list[Refusal],
    ) -> list[PlannedPolicy]:
        limit = self.params.max_policies
        written = [p for p in policies if (p.namespace, p.name) in observed]
        new = [p for p in policies if (p.namespace, p.name) not in observed]
        new.sort(key=lambda p: min(self.tracked[k].first_raised for k in p.keys))
        room = max(0, limit - len(written))
        for policy in new[room:]:
            for key in policy.keys:
                refusals.append(
                    Refusal(
                        key,
                        "cap-policies",
                        f"{limit} managed policies reached: {policy.namespace}/{policy.name} not written",
                        policy.name,
                    )
                )
        return written[:limit] + new[:room]

    def _status(
        self,
        policy: PlannedPolicy,
        found: ObservedPolicy | None,
        traffic: Any,
        existing: list[dict[str, Any]],
        writable: bool,
        refusals: list[Refusal],
    ) -> PolicyStatus | None:
        params = self.params
        items = [self.tracked[k] for k in policy.keys]
        created = (found.created() if found is not None else None) or min(
            t.first_raised for t in items
        )
        enforced_form = render(policy, self.tracked, dry_run=False, created=created)
        simulation = collateral(
            enforced_form, policy.destination, traffic, existing, params.root_namespace
        )
        if params.mode is DefenceMode.OFF:
            state, reason = State.PLANNED, "defence is off: shown, never written"
        elif not writable:
            state, reason = State.PLANNED, "no policy sink configured: shown, not written"
        elif params.mode is DefenceMode.DRY_RUN:
            state, reason = State.DRY_RUN, "defence runs in dry-run: Istio logs, does not block"
        elif simulation.denied > params.collateral_threshold or simulation.unverified:
            state, reason = State.DRY_RUN, f"kept in dry-run: {simulation.summary()}"
        else:
            state, reason = State.ENFORCED, simulation.summary()
        obj = (
            enforced_form
            if state == State.ENFORCED
            else render(policy, self.tracked, dry_run=True, created=created)
        )
        try:
            validate(obj)
        except PolicyInvalid as exc:
            refusals.extend(Refusal(k, "invalid", str(exc), policy.name) for k in policy.keys)
            return None
        return PolicyStatus(
            name=policy.name,
            namespace=policy.namespace,
            destination=policy.destination,
            state=state,
            reason=reason,
            created=created,
            expires=max(t.expires for t in items),
            anomaly_ids=tuple(i for t in items for i in t.anomaly_ids),
            edges=tuple(sorted({t.edge for t in items})),
            simulation=simulation,
            object=obj,
        )


def _differs(found: ObservedPolicy | None, status: PolicyStatus, ttl: float) -> bool:
    """Whether writing ``status`` would change what the sink holds. The expiry alone is
    rewritten only once it has moved by more than half the TTL, so a persisting anomaly does
    not rewrite its policy (and make istiod push config) every second."""
    if found is None:
        return True
    meta = status.object["metadata"]
    if dict(found.spec) != status.object["spec"]:
        return True
    wanted = dict(meta["annotations"])
    have = dict(found.annotations)
    recorded = found.expires()
    if recorded is None or status.expires - recorded > ttl / 2:
        return True
    wanted.pop("meshwatch.io/expires", None)
    have.pop("meshwatch.io/expires", None)
    return wanted != have
