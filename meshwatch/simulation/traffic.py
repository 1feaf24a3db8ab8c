"""Seeded call streams: diurnal load, background errors, rollouts, scale-ups, attacks.

Calls are generated per 10-second tick with numpy (Poisson counts, lognormal bytes and
latencies), then built as the same ``Call`` values the ALS decoder produces.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from meshwatch.calls import Call, EdgeKey, Protocol, Reporter, Workload
from meshwatch.simulation.topologies import EdgeSpec, Topology

TICK = 10.0
PROBES = (
    "/admin",
    "/admin/login",
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/actuator/env",
    "/actuator/heapdump",
    "/api/v1/users",
    "/api/v1/admin/users",
    "/debug/pprof",
    "/server-status",
    "/config.json",
    "/backup.sql",
    "/phpmyadmin",
    "/console",
    "/api/internal/keys",
    "/metrics",
    "/swagger.json",
    "/graphql",
    "/.aws/credentials",
)
NEW_EXTERNAL_HOSTS = (
    "pastebin.com",
    "transfer.sh",
    "api.telegram.org",
    "raw.githubusercontent.com",
    "ngrok.io",
)


class AttackKind(enum.StrEnum):
    LATERAL = "lateral-movement"
    ENUMERATION = "path-enumeration"
    EXFILTRATION = "exfiltration"
    ERROR_STORM = "error-storm"
    NEW_EXTERNAL = "new-external"
    VOLUME = "volume"
    """Extra calls on a known edge that look exactly like its normal ones, following the
    diurnal curve: a compromised caller doing more of what it always does."""

    @property
    def novel(self) -> bool:
        """Attacks that create an edge the baseline never saw."""
        return self in (AttackKind.LATERAL, AttackKind.NEW_EXTERNAL)


@dataclass(frozen=True, slots=True)
class Injection:
    """Ground truth: one attack on one edge over [start, end)."""

    kind: AttackKind
    low_and_slow: bool
    source: str
    target: str
    port: int
    start: float
    end: float
    edge_index: int = -1  # the known edge it rides on (enumeration, exfiltration, error storm)

    def edge_key(self, topology: Topology) -> EdgeKey:
        target = topology.workload(self.target).id
        return EdgeKey(topology.workload(self.source).id, target, self.port)


@dataclass(frozen=True, slots=True)
class Rollout:
    at: float
    app: str
    version: str


@dataclass(frozen=True, slots=True)
class ScaleUp:
    at: float
    until: float
    app: str


def enumeration_probe(rng: np.random.Generator) -> tuple[str, int]:
    """One path-enumeration request: an admin path (half the time with an id) and the status
    a scanner mostly gets (4xx). Shared by the simulator and attacks written into captures."""
    probe = PROBES[int(rng.integers(0, len(PROBES)))]
    if rng.random() < 0.5:
        probe = f"{probe}/{int(rng.integers(1, 1000))}"
    return probe, int(rng.choice((404, 404, 404, 403, 401, 200)))


def diurnal(t: float, trough: float = 0.3) -> float:
    """Load factor by time of day: ``trough`` at 04:00, 1.0 at 16:00 (UTC here)."""
    hour = (t % 86400) / 3600.0
    return trough + (1 - trough) * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24))


@dataclass(frozen=True, slots=True)
class Contention:
    """Not an attack: a noisy neighbour or CPU contention multiplies an edge's latencies."""

    edge_index: int
    start: float
    end: float
    factor: float = 2.0


@dataclass
class Simulator:
    topology: Topology
    seed: int
    rate_scale: float = 1.0
    trough: float = 0.3
    rollouts: list[Rollout] = field(default_factory=list)
    contentions: list[Contention] = field(default_factory=list)
    scaleups: list[ScaleUp] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._paths = [self._path_pool(e) for e in self.topology.edges]
        self._workloads: dict[tuple[str, str], Workload] = {}

    def _path_pool(self, edge: EdgeSpec) -> list[str]:
        pool = []
        for template in edge.paths:
            for _ in range(50 if "{" in template else 1):
                pool.append(
                    template.replace("{num}", str(int(self.rng.integers(1, 10_000)))).replace(
                        "{id}", f"{int(self.rng.integers(0, 16**12)):012x}"
                    )
                )
        return pool

    def _workload(self, app: str, at: float) -> Workload:
        version = "v1"
        for r in self.rollouts:
            if r.app == app and r.at <= at:
                version = r.version
        key = (app, version)
        if key not in self._workloads:
            self._workloads[key] = self.topology.workload(app, version)
        return self._workloads[key]

    def _latency_factor(self, app: str, at: float) -> float:
        factor = 1.0
        for s in self.scaleups:
            if s.app == app and s.at <= at < s.until:
                factor *= 0.8
        for r in self.rollouts:
            if r.app == app and r.at <= at:
                factor *= 1.05 if r.version.endswith(("2", "4", "6", "8")) else 0.97
        return factor

    def _rollout_bump(self, app: str, at: float) -> float:
        """A short burst of 5xx while pods restart (realistic rollout noise)."""
        return 0.02 if any(r.app == app and r.at <= at < r.at + 90 for r in self.rollouts) else 0.0

    def calls(self, start: float, end: float) -> Iterator[list[Call]]:
        """Calls in [start, end), one time-ordered list per tick."""
        t = start
        while t < end:
            tick_end = min(end, t + TICK)
            batch: list[Call] = []
            for i, edge in enumerate(self.topology.edges):
                batch += self._edge_calls(i, edge, t, tick_end)
            for inj in self.injections:
                if inj.start < tick_end and inj.end > t:
                    batch += self._attack_calls(inj, max(t, inj.start), min(tick_end, inj.end))
            batch.sort(key=lambda c: c.time)
            yield batch
            t = tick_end

    def _active(self, i: int, t0: float, t1: float, kind: AttackKind) -> Injection | None:
        for inj in self.injections:
            if inj.edge_index == i and inj.kind is kind and inj.start < t1 and inj.end > t0:
                return inj
        return None

    def _edge_calls(
        self, i: int, edge: EdgeSpec, t0: float, t1: float, extra_rate: float = 0.0
    ) -> list[Call]:
        rng = self.rng
        rate = edge.rate * self.rate_scale * diurnal(t0, self.trough)
        volume = self._active(i, t0, t1, AttackKind.VOLUME)
        if volume is not None:
            rate *= 3.0 if volume.low_and_slow else 10.0
        n = int(rng.poisson(rate * (t1 - t0)))
        if n == 0:
            return []
        times = np.sort(rng.uniform(t0, t1, n))
        source = self._workload(edge.source, t0)
        target = self._workload(edge.target, t0)
        e5 = edge.error_5xx + self._rollout_bump(edge.target, t0)
        storm = self._active(i, t0, t1, AttackKind.ERROR_STORM)
        if storm is not None:
            e5 = 0.5 if not storm.low_and_slow else 2.5 * edge.error_5xx + 0.01
        exfil = self._active(i, t0, t1, AttackKind.EXFILTRATION)
        bytes_factor = 1.0 if exfil is None else (100.0 if not exfil.low_and_slow else 2.5)
        u = rng.random(n)
        statuses = np.where(u < e5, 503, np.where(u < e5 + edge.error_4xx, 404, 200))
        if edge.protocol is Protocol.TCP:
            statuses[:] = 0
        sent = rng.lognormal(math.log(edge.request_bytes), 0.25, n).astype(int)
        received = (rng.lognormal(math.log(edge.response_bytes), 0.35, n) * bytes_factor).astype(
            int
        )
        slowdown = 1.0
        for c in self.contentions:
            if c.edge_index == i and c.start < t1 and c.end > t0:
                slowdown *= c.factor
        latency = rng.lognormal(
            math.log(edge.latency_ms * self._latency_factor(edge.target, t0) * slowdown), 0.4, n
        )
        paths = self._paths[i]
        path_idx = rng.integers(0, len(paths), n)
        method_idx = rng.integers(0, len(edge.methods), n)
        return [
            Call(
                float(times[k]),
                source,
                target,
                edge.port,
                edge.protocol,
                edge.methods[int(method_idx[k])],
                paths[int(path_idx[k])],
                int(statuses[k]),
                int(sent[k]),
                int(received[k]),
                float(latency[k]),
                "",
                Reporter.SERVER if not target.external else Reporter.CLIENT,
                "",
            )
            for k in range(n)
        ]

    def _attack_calls(self, inj: Injection, t0: float, t1: float) -> list[Call]:
        rng = self.rng
        source = self._workload(inj.source, t0)
        if inj.kind in (AttackKind.LATERAL, AttackKind.NEW_EXTERNAL):
            rate = (
                (1 / 300 if inj.kind is AttackKind.NEW_EXTERNAL else 1 / 60)
                if inj.low_and_slow
                else 0.5
            )
            n = int(rng.poisson(rate * (t1 - t0)))
            if inj.start >= t0 and inj.start < t1:
                n = max(n, 1)  # the attack starts with a call
            target = self._workload(inj.target, t0)
            times = (
                sorted([inj.start, *rng.uniform(t0, t1, max(0, n - 1))])
                if inj.start >= t0
                else sorted(rng.uniform(t0, t1, n))
            )
            return [
                Call(
                    float(t),
                    source,
                    target,
                    inj.port,
                    Protocol.TCP if inj.port in (27017, 6379) else Protocol.HTTP,
                    "GET",
                    "/",
                    200,
                    300,
                    1200,
                    8.0,
                    "",
                    Reporter.CLIENT if target.external else Reporter.SERVER,
                    "",
                )
                for t in times[:n]
            ]
        if inj.kind is AttackKind.ENUMERATION:
            edge = self.topology.edges[inj.edge_index]
            multiple = 2.5 if inj.low_and_slow else 10.0
            rate = (multiple - 1.0) * edge.rate * self.rate_scale * diurnal(t0, self.trough)
            n = int(rng.poisson(rate * (t1 - t0)))
            target = self._workload(edge.target, t0)
            out = []
            for t in np.sort(rng.uniform(t0, t1, n)):
                probe, status = enumeration_probe(rng)
                out.append(
                    Call(
                        float(t),
                        source,
                        target,
                        edge.port,
                        edge.protocol,
                        "GET",
                        probe,
                        status,
                        250,
                        150,
                        3.0,
                        "",
                        Reporter.SERVER,
                        "",
                    )
                )
            return out
        return []  # exfiltration and error storms alter the edge's own calls
