"""``meshwatch evaluate``: learn on simulated normal traffic, then measure detection on
injected attacks and false alerts on normal traffic with rollouts, through the live code path.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshwatch.calls import EdgeKey, WindowSpec
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.models import ModelBundle, TrainingParams
from meshwatch.monitor.readmodel import AnomalyDoc, anomaly_doc
from meshwatch.monitor.replaying import Replayer, raised, replay_monitor
from meshwatch.simulation.topologies import Topology
from meshwatch.simulation.traffic import (
    NEW_EXTERNAL_HOSTS,
    AttackKind,
    Contention,
    Injection,
    Rollout,
    ScaleUp,
    Simulator,
)

EPOCH = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """A seeded evaluation profile (see ``evaluate.yaml``)."""

    seed: int = 42
    window_seconds: float = 60.0
    window_slices: int = 6
    train_hours: float = 48.0
    normal_hours: float = 24.0
    injections: int = 10
    attack_minutes: float = 10.0
    gap_minutes: float = 30.0
    rate_scale: float = 0.25
    target_false_alerts_per_day: float = 1.0
    n_estimators: int = 200
    rollout_every_hours: float = 6.0
    scaleup_every_hours: float = 8.0
    diurnal_trough: float = 0.3  # load at 04:00 relative to the 16:00 peak
    use_latency: bool = True  # latency features take part in the model (else: ignored)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EvalConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown evaluation settings: {sorted(unknown)}")
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in values.items()})


@dataclass
class ScenarioResult:
    name: str
    kind: AttackKind | None
    low_and_slow: bool
    injections: int = 0
    detected: int = 0
    detected_in_time: int = 0
    ttd: list[float] = field(default_factory=list)
    alerts: int = 0
    true_alerts: int = 0
    normal_hours: float = 0.0
    false_alerts: int = 0
    injected: list[dict[str, Any]] = field(default_factory=list)  # per injection: edge, start, ttd
    false_reasons: list[str] = field(default_factory=list)  # what each false alert said

    @property
    def recall(self) -> float:
        return self.detected / self.injections if self.injections else float("nan")

    @property
    def recall_in_time(self) -> float:
        return self.detected_in_time / self.injections if self.injections else float("nan")

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    @property
    def false_per_24h(self) -> float:
        return 24 * self.false_alerts / self.normal_hours if self.normal_hours else float("nan")


@dataclass
class EvalReport:
    topology: str
    config: EvalConfig
    scenarios: list[ScenarioResult]
    bundle: ModelBundle | None
    false_alerts_normal_day: int
    normal_hours: float
    false_alert_details: list[AnomalyDoc]
    performance_normal_day: int = 0
    perturbation: PerturbationResult | None = None

    @property
    def false_alerts_per_24h(self) -> float:
        return (
            self.false_alerts_normal_day * 24.0 / self.normal_hours
            if self.normal_hours
            else float("nan")
        )

    def table(self) -> list[str]:
        lines = [
            f"== {self.topology}: trained {self.config.train_hours:g}h, normal day {self.normal_hours:g}h, "
            f"{self.config.injections} injections x {self.config.attack_minutes:g} min per scenario, "
            f"window {self.config.window_seconds:g}s",
            f"{'scenario':<32} {'recall':>6} {'in-time':>7} {'precision':>9} {'ttd med s':>9} {'ttd max s':>9} {'false/24h':>9}",
        ]
        for s in self.scenarios:
            med = f"{statistics.median(s.ttd):.1f}" if s.ttd else "-"
            top = f"{max(s.ttd):.1f}" if s.ttd else "-"
            lines.append(
                f"{s.name:<32} {s.recall:>6.2f} {s.recall_in_time:>7.2f} {s.precision:>9.2f} {med:>9} {top:>9} {s.false_per_24h:>9.2f}"
            )
        lines.append(
            f"normal traffic with rollouts and scale-ups: {self.false_alerts_normal_day} false alert(s) "
            f"in {self.normal_hours:g}h = {self.false_alerts_per_24h:.2f} per 24h "
            f"({self.performance_normal_day} performance anomalies, not alerts)"
        )
        p = self.perturbation
        if p is not None:
            lines.append(
                f"latency-only perturbation (p99 x{p.factor:g} on one edge, {p.episodes} x "
                f"{p.minutes:g} min): {p.security} security anomalies, {p.performance} performance"
            )
        return lines


@dataclass(frozen=True, slots=True)
class PerturbationResult:
    factor: float
    episodes: int
    minutes: float
    security: int
    performance: int


SCENARIOS: tuple[tuple[AttackKind, bool], ...] = tuple(
    (kind, low) for low in (False, True) for kind in AttackKind
)


def _deadline(inj: Injection, window: float) -> float:
    """How fast a detection must come to count as in time: novel edges at their first call,
    low-and-slow volume within five windows, the rest within two."""
    if inj.kind.novel:
        return 1.0
    return (5 if inj.kind is AttackKind.VOLUME else 2) * window


def _schedule(
    sim: Simulator, start: float, end: float, config: EvalConfig, rng: np.random.Generator
) -> None:
    apps = [a for a in sim.topology.apps if a not in ("istio-ingressgateway", "loadgenerator")]
    version = {a: 1 for a in apps}
    t = start + config.rollout_every_hours * 3600 * 0.5
    while t < end:
        app = apps[int(rng.integers(0, len(apps)))]
        version[app] += 1
        sim.rollouts.append(Rollout(t, app, f"v{version[app]}"))
        t += config.rollout_every_hours * 3600
    t = start + config.scaleup_every_hours * 3600 * 0.3
    while t < end:
        app = apps[int(rng.integers(0, len(apps)))]
        sim.scaleups.append(ScaleUp(t, t + 3600, app))
        t += config.scaleup_every_hours * 3600


def lateral_pairs(topology: Topology) -> list[EdgeKey]:
    """Every (source, target, port) between the topology's apps that normal traffic never uses:
    the first listed are the classic ones, then the rest in a fixed order."""
    ports = {e.target: e.port for e in topology.edges}
    existing = {(e.source, e.target) for e in topology.edges}
    pairs = list(topology.lateral_targets)
    for source in topology.apps:
        for target in topology.apps:
            if source != target and (source, target) not in existing and target in ports:
                pair = EdgeKey(source, target, ports[target])
                if pair not in pairs:
                    pairs.append(pair)
    return pairs


def _injection(
    kind: AttackKind,
    low: bool,
    topology: Topology,
    n: int,
    start: float,
    minutes: float,
    rng: np.random.Generator,
) -> Injection:
    """The n-th injection of the whole run; novel attacks use a target not used before, so each
    one really is a first contact."""
    end = start + minutes * 60
    if kind is AttackKind.LATERAL:
        pairs = lateral_pairs(topology)
        source, target, port = pairs[n % len(pairs)]
        return Injection(kind, low, source, target, port, start, end)
    if kind is AttackKind.NEW_EXTERNAL:
        source = topology.edges[n % len(topology.edges)].source
        host = NEW_EXTERNAL_HOSTS[n % len(NEW_EXTERNAL_HOSTS)]
        return Injection(kind, low, source, f"c{n}.{host}", 443, start, end)
    http_edges = [k for k, e in enumerate(topology.edges) if e.protocol.value == "http"]
    candidates = (
        http_edges
        if kind in (AttackKind.ENUMERATION, AttackKind.ERROR_STORM)
        else list(range(len(topology.edges)))
    )
    if kind is AttackKind.VOLUME:
        # a compromised caller doing more of its usual calls: the caller serves requests
        # itself. Extra volume on an entry point's edge is indistinguishable from more users.
        serving = {e.target for e in topology.edges}
        candidates = [k for k in candidates if topology.edges[k].source in serving]
    index = candidates[int(rng.integers(0, len(candidates)))]
    edge = topology.edges[index]
    return Injection(kind, low, edge.source, edge.target, edge.port, start, end, index)


def _matches(a: Anomaly, inj: Injection, topology: Topology, window: float) -> bool:
    return a.edge == inj.edge_key(topology) and inj.start <= a.first_seen <= inj.end + 2 * window


def evaluate(
    topology: Topology, config: EvalConfig, progress: Callable[[str], None] | None = None
) -> EvalReport:
    """Train on normal traffic, then run the normal day and every attack scenario."""
    rng = np.random.default_rng(config.seed)
    sim = Simulator(
        topology, config.seed, rate_scale=config.rate_scale, trough=config.diurnal_trough
    )
    window = config.window_seconds
    scenario_hours = config.injections * (config.gap_minutes + config.attack_minutes) / 60.0
    total_end = (
        EPOCH
        + 3600 * (config.train_hours + config.normal_hours + scenario_hours * (len(SCENARIOS) + 1))
        + 3600
    )
    _schedule(sim, EPOCH, total_end, config, rng)
    spec = WindowSpec(window, config.window_slices)
    params = DetectionParams(
        window=spec,
        learn_for=config.train_hours * 3600,
        training=TrainingParams(
            n_estimators=config.n_estimators,
            random_state=config.seed,
            target_false_alerts_per_day=config.target_false_alerts_per_day,
            use_latency=config.use_latency,
        ),
    )
    monitor = replay_monitor(params, Mode.OBSERVE, edge_ttl=6 * 3600)
    engine = monitor.engine
    replayer = Replayer(monitor)

    performance: list[Anomaly] = []

    def run(start: float, end: float) -> list[Anomaly]:
        """Security anomalies raised over [start, end); performance ones are set aside."""
        found: list[Anomaly] = []
        for batch in sim.calls(start, end):
            found += raised(replayer.feed(batch))
        found += raised(replayer.advance_to(end))
        performance.extend(a for a in found if not a.kind.security)
        return [a for a in found if a.kind.security]

    say = progress or (lambda _: None)
    t = EPOCH
    say(f"{topology.name}: learning {config.train_hours:g}h of normal traffic")
    run(t, t + config.train_hours * 3600 + window)
    t += config.train_hours * 3600 + window
    assert engine.mode is Mode.OBSERVE, "the learning period should have promoted the engine"

    say(f"{topology.name}: {config.normal_hours:g}h of normal traffic with rollouts and scale-ups")
    normal = run(t, t + config.normal_hours * 3600)
    performance_normal_day = len(performance)
    details = [anomaly_doc(a) for a in normal]
    t += config.normal_hours * 3600

    results = []
    injected = dict.fromkeys(AttackKind, 0)  # per kind, so novel targets are never reused
    for kind, low in SCENARIOS:
        name = f"{kind.value}{' (low-and-slow)' if low else ''}"
        say(f"{topology.name}: {name}")
        result = ScenarioResult(name, kind, low)
        scenario_start = t
        injections = []
        found: list[Anomaly] = []
        for _ in range(config.injections):
            found += run(t, t + config.gap_minutes * 60)
            t += config.gap_minutes * 60
            inj = _injection(kind, low, topology, injected[kind], t, config.attack_minutes, rng)
            injected[kind] += 1
            sim.injections.append(inj)
            injections.append(inj)
            found += run(t, inj.end)
            t = inj.end
        found += run(t, t + 2 * window)
        t += 2 * window
        result.injections = len(injections)
        for inj in injections:
            hits = [a for a in found if _matches(a, inj, topology, window)]
            result.injected.append(
                {
                    "edge": inj.edge_key(topology),
                    "start": inj.start,
                    "ttd": min(a.first_seen for a in hits) - inj.start if hits else None,
                }
            )
            if hits:
                result.detected += 1
                delay = min(a.first_seen for a in hits) - inj.start
                result.ttd.append(delay)
                if delay <= _deadline(inj, window):
                    result.detected_in_time += 1
        result.alerts = len(found)
        result.true_alerts = sum(
            1 for a in found if any(_matches(a, inj, topology, window) for inj in injections)
        )
        attack_hours = sum(inj.end - inj.start + 2 * window for inj in injections) / 3600
        result.normal_hours = (t - scenario_start) / 3600 - attack_hours
        result.false_alerts = result.alerts - result.true_alerts
        result.false_reasons = [
            f"{a.edge}: {a.reason}"
            for a in found
            if not any(_matches(a, inj, topology, window) for inj in injections)
        ]
        results.append(result)
        sim.injections.clear()

    say(f"{topology.name}: latency-only perturbation")
    http_edges = [k for k, e in enumerate(topology.edges) if e.protocol.value == "http"]
    security, before = 0, len(performance)
    for _ in range(config.injections):
        t += config.gap_minutes * 60
        run(t - config.gap_minutes * 60, t)
        index = http_edges[int(rng.integers(0, len(http_edges)))]
        sim.contentions.append(Contention(index, t, t + config.attack_minutes * 60))
        security += len(run(t, t + config.attack_minutes * 60 + 2 * window))
        t += config.attack_minutes * 60 + 2 * window
        sim.contentions.clear()
    perturbation = PerturbationResult(
        2.0, config.injections, config.attack_minutes, security, len(performance) - before
    )
    return EvalReport(
        topology.name,
        config,
        results,
        engine.bundle,
        len(normal),
        config.normal_hours,
        details,
        performance_normal_day,
        perturbation,
    )
