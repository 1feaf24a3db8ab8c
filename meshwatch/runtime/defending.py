"""Runtime defence: the pure controller (``policy.controlling``) driven by the monitor's
events, reconciled into a policy sink.

The controller runs on the event loop; sink calls block (HTTP to the API server, file
writes) and run in a worker thread. A reconcile runs at once when an anomaly is raised or
ends, and otherwise every ``RECONCILE_SECONDS``; what the sink holds is re-listed every
``RESYNC_SECONDS``, so a managed policy deleted behind meshwatch's back is re-created and one
edited by hand is put back. At start the sink's managed policies are adopted (no duplicates,
no lost denies after a restart).

Under failure nothing is lost and nothing stops: a sink error is logged, counted
(``meshwatch_policy_actions_total{action="error"}``) and retried on the next reconcile; a
refusal is logged once per threat and reason, counted in
``meshwatch_policy_refusals_total{reason}`` and listed in ``/api/v1/policies``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshwatch.calls import Call, EdgeKey, Workload
from meshwatch.errors import ForeignPolicyError, MeshwatchError, PolicySinkError
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.events import AnomalyEnded, AnomalyRaised, Event
from meshwatch.policy.controlling import Actions, Defence, PolicyStatus
from meshwatch.policy.objects import ObservedPolicy
from meshwatch.policy.params import DefenceMode, DefenceParams, EgressGateway
from meshwatch.policy.planning import Refusal
from meshwatch.policy.reporting import DefenceSnapshot, PoliciesDoc, policies_doc
from meshwatch.settings import Settings

log = logging.getLogger(__name__)
RECONCILE_SECONDS = 1.0
RESYNC_SECONDS = 30.0
NORMAL_STATES = frozenset({"normal", "warming-up"})


class PolicySink(Protocol):
    """Where managed policies live: the Kubernetes API or a directory."""

    name: str

    def list(self) -> list[dict[str, Any]]: ...

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete(self, namespace: str, name: str) -> bool: ...

    def close(self) -> None: ...


def defence_params(settings: Settings) -> DefenceParams:
    return DefenceParams(
        mode=DefenceMode(settings.defence),
        own_namespace=settings.own_namespace,
        protected_namespaces=frozenset(settings.protected_namespaces),
        protected_principals=frozenset(settings.protected_principals),
        max_policies=settings.max_policies,
        max_denies_per_minute=settings.max_denies_per_minute,
        ttl=settings.policy_ttl,
        deny_known_edges=settings.deny_known_edges,
        egress_gateway=(
            EgressGateway.parse(settings.egress_gateway) if settings.egress_gateway else None
        ),
        collateral_threshold=settings.collateral_threshold,
    )


def build_sink(settings: Settings) -> PolicySink | None:
    """The configured sink (``MeshwatchError`` when it cannot be set up)."""
    if settings.policy_kube and settings.policy_dir is not None:
        raise MeshwatchError("choose one policy sink: --policy-kube or --policy-dir")
    if settings.policy_kube:
        from meshwatch.adapters.kube.client import api_client
        from meshwatch.adapters.kube.policy_sink import KubePolicySink

        kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
        return KubePolicySink(api_client(kubeconfig))
    if settings.policy_dir is not None:
        from meshwatch.adapters.files.policy_dir import DirectoryPolicySink

        return DirectoryPolicySink(settings.policy_dir)
    return None


@dataclass
class DefenceFigures:
    """Counters for /metrics and the API."""

    actions: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    reconciles: int = 0
    accepted_at: dict[str, float] = field(default_factory=dict)  # anomaly id -> sink accepted


class DefenceService:
    def __init__(self, defence: Defence, sink: PolicySink | None, monitor: Monitor) -> None:
        self.defence = defence
        self.sink = sink
        self.monitor = monitor
        self.figures = DefenceFigures()
        self.observed: dict[tuple[str, str], ObservedPolicy] = {}
        self.foreign: dict[tuple[str, str], ObservedPolicy] = {}
        self.last = Actions()
        self._by_edge: dict[EdgeKey, PolicyStatus] = {}
        self._wake = asyncio.Event()
        self.started = asyncio.Event()
        """Set once the schema is loaded and the sink's policies adopted."""
        self._refused: set[tuple[Any, str]] = set()
        self._last_sync = 0.0
        self.on_applied: list[Callable[[PolicyStatus, float], None]] = []

    @property
    def params(self) -> DefenceParams:
        return self.defence.params

    # -- events ---------------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        now = time.time()
        for event in events:
            if isinstance(event, AnomalyRaised):
                self.defence.raised(event.anomaly, now)
                self._wake.set()
            elif isinstance(event, AnomalyEnded):
                self.defence.ended(event.anomaly, event.at)
                self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt what the sink already holds (a failure is logged; adoption is retried at
        the first resync)."""
        if self.sink is None:
            log.info("defence %s, no policy sink: plans are shown, not written", self.params.mode)
            return
        try:
            await self._sync()
        except PolicySinkError as exc:
            log.error("cannot list managed policies in the %s sink: %s", self.sink.name, exc)
            return
        adopted = self.defence.adopt(self.observed.values())
        log.info(
            "defence %s via the %s sink: %d managed policies found, %d threats adopted",
            self.params.mode,
            self.sink.name,
            len(self.observed),
            adopted,
        )

    async def run(self) -> None:
        await self.start()
        self.started.set()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RECONCILE_SECONDS)
            self._wake.clear()
            await self.reconcile()

    async def _sync(self) -> None:
        assert self.sink is not None
        objects = await asyncio.to_thread(self.sink.list)
        self.observed = {p.key: p for p in (ObservedPolicy.of(o) for o in objects) if p.managed}
        self._last_sync = time.monotonic()

    async def reconcile(self, now: float | None = None) -> Actions:
        now = time.time() if now is None else now
        monitor = self.monitor
        if self.sink is not None and time.monotonic() - self._last_sync > RESYNC_SECONDS:
            try:
                await self._sync()
            except PolicySinkError as exc:
                self._error(f"list: {exc}")
        self.defence.still_active(list(monitor.engine.open), now)
        bundle = monitor.engine.bundle
        baseline = bundle.baseline if bundle is not None else None
        actions = self.defence.reconcile(
            now,
            self.actors,
            baseline,
            {**self.foreign, **self.observed},
            self.recent_normal_calls,
            writable=self.sink is not None,
        )
        self.figures.reconciles += 1
        self._note_refusals(actions.refusals)
        if self.sink is not None:
            await self._perform(actions, now)
        self.last = actions
        self._by_edge = {edge: status for status in actions.policies for edge in status.edges}
        return actions

    def actors(self, node_id: str) -> Workload | None:
        node = self.monitor.graph.nodes.get(node_id)
        if node is None and self.monitor.engine.bundle is not None:
            node = self.monitor.engine.bundle.baseline.actors.get(node_id)
        return node

    def recent_normal_calls(self) -> Iterator[Call]:
        status = self.monitor.edge_status
        for edge in self.monitor.graph.edges.values():
            if status(edge.key)[0] in NORMAL_STATES:
                yield from (c for c in edge.samples if c is not None)

    async def _perform(self, actions: Actions, now: float) -> None:
        assert self.sink is not None
        by_key = {(s.namespace, s.name): s for s in actions.policies}
        for obj in actions.apply:
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            existed = key in self.observed
            try:
                await asyncio.to_thread(self.sink.apply, obj)
            except ForeignPolicyError as exc:
                self.foreign[key] = ObservedPolicy(key[0], key[1], managed=False)
                log.warning("not touching a foreign policy: %s", exc)
                continue
            except PolicySinkError as exc:
                self._error(f"apply {key[0]}/{key[1]}: {exc}")
                continue
            self.observed[key] = ObservedPolicy.of(obj)
            self.foreign.pop(key, None)
            self.figures.actions["update" if existed else "create"] += 1
            status = by_key.get(key)
            if status is not None:
                accepted = time.time()
                for anomaly_id in status.anomaly_ids:
                    self.figures.accepted_at.setdefault(anomaly_id, accepted)
                log.warning(
                    "policy %s/%s %s (%s): %s",
                    key[0],
                    key[1],
                    "written" if not existed else "updated",
                    status.state,
                    status.reason,
                )
                for hook in self.on_applied:
                    hook(status, accepted)
        for namespace, name in actions.delete:
            try:
                await asyncio.to_thread(self.sink.delete, namespace, name)
            except ForeignPolicyError as exc:
                log.warning("not deleting a foreign policy: %s", exc)
                self.observed.pop((namespace, name), None)
                continue
            except PolicySinkError as exc:
                self._error(f"delete {namespace}/{name}: {exc}")
                continue
            self.observed.pop((namespace, name), None)
            self.figures.actions["delete"] += 1
            log.warning("policy %s/%s removed (no longer desired)", namespace, name)

    def _error(self, message: str) -> None:
        self.figures.actions["error"] += 1
        self.figures.last_error = message
        log.error("policy sink: %s (retried at the next reconcile)", message)

    def _note_refusals(self, refusals: Iterable[Refusal]) -> None:
        for refusal in refusals:
            marker = (refusal.key, refusal.reason)
            if marker in self._refused:
                continue
            self._refused.add(marker)
            self.figures.refusals[refusal.reason] += 1
            edge, threat = refusal.key
            log.warning(
                "defence refused %s on %s: %s (%s)", threat, edge, refusal.reason, refusal.detail
            )

    # -- operators ------------------------------------------------------------------------

    def approve(self, source: str, destination: str, port: int | None) -> list[EdgeKey]:
        lifted = self.defence.approve(source, destination, port)
        self._wake.set()
        return lifted

    def revoke(self, name: str | None, namespace: str | None = None) -> list[str]:
        revoked = self.defence.revoke(name, namespace)
        self._wake.set()
        return revoked

    def policy_of(self, edge: EdgeKey) -> PolicyStatus | None:
        """The desired policy covering ``edge`` (the graph asks for every edge)."""
        return self._by_edge.get(edge)

    def document(self) -> PoliciesDoc:
        figures = self.figures
        return policies_doc(
            self.last,
            self.params.mode.value,
            self.sink.name if self.sink is not None else None,
            figures.actions,
            figures.refusals,
            figures.last_error,
        )

    def snapshot(self) -> DefenceSnapshot:
        return DefenceSnapshot(
            mode=self.params.mode.value,
            policies=Counter(s.state for s in self.last.policies),
            actions=dict(self.figures.actions),
            refusals=dict(self.figures.refusals),
        )
