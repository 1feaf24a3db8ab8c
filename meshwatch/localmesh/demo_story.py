"""What the demo plays and tells: the attacks, each step of the defence as it happens, and
the proof of the block (Envoy's own counters, not meshwatch's word for it)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import yaml

from meshwatch.calls import EdgeKey
from meshwatch.localmesh.control_plane import Delivery
from meshwatch.localmesh.launcher import LocalMesh
from meshwatch.monitor.events import AnomalyRaised, Event
from meshwatch.policy.controlling import PolicyStatus

Say = Callable[[str], None]
ATTACKER = ("productpage-v1", "ratings:9080", "/ratings/0?dump=all")  # a stolen identity
SCANNER = "reviews-v2"  # compromised; calls ratings normally on "/"
ADMIN_PATHS = ("/admin", "/.env", "/actuator/env", "/debug/pprof", "/backup.sql", "/api/v1/users")
NOVEL_EDGE = EdgeKey("default/productpage", "default/ratings", 9080)
SCANNED_EDGE = EdgeKey("default/reviews", "default/ratings", 9080)
PRODUCTION_NOTE = (
    "defence: enforce, chosen for the demo so you can watch the block. In production start in "
    "dry-run: Istio evaluates each policy and logs what it would deny, blocking nothing, until "
    "you trust the simulation and the baseline."
)


@dataclass
class Counts:
    sent: int = 0
    denied: int = 0
    other: int = 0
    first_denied: float | None = None

    def record(self, status: int) -> None:
        self.sent += 1
        if status == 403:
            self.denied += 1
            if self.first_denied is None:
                self.first_denied = time.time()
        elif status >= 400:
            self.other += 1


@dataclass
class Story:
    """The demo's narration and figures."""

    say: Say
    attack_started: float | None = None
    scan_started: float | None = None
    attacker: Counts = field(default_factory=Counts)
    scanner_unseen: Counts = field(default_factory=Counts)
    scanner_normal: Counts = field(default_factory=Counts)
    normal: Counts = field(default_factory=Counts)
    detected: dict[EdgeKey, float] = field(default_factory=dict)
    accepted: dict[EdgeKey, float] = field(default_factory=dict)
    live: list[tuple[str, float]] = field(default_factory=list)  # (policy name, when live)
    policies: dict[EdgeKey, str] = field(default_factory=dict)

    # -- hooks -------------------------------------------------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, AnomalyRaised):
                a = event.anomaly
                self.detected.setdefault(a.edge, time.time())
                self.say(f"ANOMALY {a.kind.value}: {a.source} -> {a.target}:{a.port}: {a.reason}")

    def on_policy(self, status: PolicyStatus, at: float) -> None:
        fresh = [e for e in status.edges if e not in self.accepted]
        for edge in fresh:
            self.accepted[edge] = at
            self.policies[edge] = status.name
        if not fresh:
            return
        self.say(
            f"POLICY {status.namespace}/{status.name} accepted by the Kubernetes API: {status.state}"
        )
        self.say(f"  collateral simulation: {status.simulation.summary()}")
        text = yaml.safe_dump(dict(status.object), sort_keys=False).rstrip()
        self.say("  " + text.replace("\n", "\n  "))

    def on_live(self, delivery: Delivery) -> None:
        names = sorted(
            {k.split("-policy[", 1)[1].split("]", 1)[0] for k in delivery.rendered.rules}
        )
        for name in names:
            self.live.append((name, delivery.at))
        if names:
            self.say(
                f"LIVE in Envoy: {delivery.workload} enforces {', '.join(names)} "
                f"({len(delivery.rendered.rules)} RBAC rule{'s' if len(delivery.rendered.rules) != 1 else ''}, "
                f"config version {delivery.version})"
            )

    # -- the attacks ---------------------------------------------------------------------

    async def attack(self, mesh: LocalMesh, stop: asyncio.Event) -> None:
        """A compromised productpage calls ratings, which it never did, twice a second."""
        self.say("attack 1: productpage's identity calls ratings directly (lateral movement)")
        self.attack_started = time.time()
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                status, _ = await mesh.request(*ATTACKER)
                self.attacker.record(status)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def scan(self, mesh: LocalMesh, stop: asyncio.Event) -> None:
        """A compromised reviews enumerates admin paths on ratings, an edge it uses normally."""
        await asyncio.sleep(2)
        self.say("attack 2: a compromised reviews scans ratings for admin paths (a known edge)")
        self.scan_started = time.time()
        i = 0
        while not stop.is_set():
            path = ADMIN_PATHS[i % len(ADMIN_PATHS)]
            i += 1
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                status, _ = await mesh.request(SCANNER, "ratings:9080", path, status=404)
                self.scanner_unseen.record(status)
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                status, _ = await mesh.request(SCANNER, "ratings:9080", "/")
                self.scanner_normal.record(status)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)

    def blocked(self) -> bool:
        """Both attacks denied a few times over: the demo has shown what it came to show."""
        return self.attacker.denied >= 4 and self.scanner_unseen.denied >= 4

    # -- the proof -----------------------------------------------------------------------

    def timeline(self, edge: EdgeKey, started: float | None, first_denied: float | None) -> str:
        if started is None:
            return "not started"
        parts = []
        detected = self.detected.get(edge)
        parts.append(f"detected +{detected - started:.1f} s" if detected else "not detected")
        accepted = self.accepted.get(edge)
        if accepted:
            parts.append(f"policy accepted by the API +{accepted - started:.1f} s")
        name = self.policies.get(edge, "")
        live = min(
            (at for n, at in self.live if n == name and accepted and at >= accepted), default=None
        )
        if live:
            parts.append(f"live in Envoy +{live - started:.1f} s")
        if first_denied:
            parts.append(f"first 403 +{first_denied - started:.1f} s")
            if detected:
                parts.append(f"({first_denied - detected:.1f} s after detection)")
        return ", ".join(parts)

    def proof(self, rbac_denied_total: int) -> list[str]:
        attack_denied = (
            self.attacker.denied + self.scanner_unseen.denied + self.scanner_normal.denied
        )
        normal_denied = max(0, rbac_denied_total - attack_denied) + self.scanner_normal.denied
        return [
            "proof of the block (Envoy's own RBAC counters):",
            f"  attacker requests denied: {self.attacker.denied} of {self.attacker.sent}",
            f"  scanner's unseen paths denied: {self.scanner_unseen.denied} of {self.scanner_unseen.sent}; "
            f"its normal path denied: {self.scanner_normal.denied} of {self.scanner_normal.sent}",
            f"  normal browsing: {self.normal.sent} requests, {self.normal.other + self.normal.denied} failed",
            f"  normal requests denied: {normal_denied}",
            f"  novel edge timeline: {self.timeline(NOVEL_EDGE, self.attack_started, self.attacker.first_denied)}",
            f"  scanner timeline: {self.timeline(SCANNED_EDGE, self.scan_started, self.scanner_unseen.first_denied)}",
        ]
