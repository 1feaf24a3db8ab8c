"""``meshwatch train`` and ``meshwatch evaluate``: files in, models and reports out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from meshwatch.adapters.files.capture import Capture, calls_from_table, read_capture
from meshwatch.adapters.files.models import load_bundle, save_bundle
from meshwatch.calls import Call, WindowSpec
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.models import ModelBundle, TrainingParams
from meshwatch.errors import ModelError
from meshwatch.features.describing import iso
from meshwatch.monitor.replaying import Replayer, replay_monitor
from meshwatch.monitor.reviewing import (
    Selection,
    evidence,
    identity_quality,
    merge_aliases,
    review,
)
from meshwatch.simulation.evaluation import EvalConfig, EvalReport, evaluate
from meshwatch.simulation.topologies import TOPOLOGIES


def _chunks(calls: Iterator[Call], size: int = 10_000) -> Iterator[list[Call]]:
    chunk: list[Call] = []
    for call in calls:
        chunk.append(call)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def learn_from_calls(
    chunks: Iterator[list[Call]],
    window: WindowSpec,
    params: TrainingParams,
    name: str,
    progress: tqdm[Any] | None = None,
) -> ModelBundle:
    """Replay calls in learn mode through the monitor core, then promote to a trained bundle."""
    monitor = replay_monitor(
        DetectionParams(window=window, min_requests=params.min_requests, training=params),
        Mode.LEARN,
    )
    replayer = Replayer(monitor)
    for chunk in chunks:
        replayer.feed(chunk)
        if progress is not None:
            progress.update(len(chunk))
    if replayer.next_boundary is not None:
        replayer.advance_to(replayer.next_boundary)
    return monitor.engine.promote(name)


def captured_calls(
    capture_dir: Path, window: WindowSpec | None, selection: Selection
) -> tuple[list[Call], WindowSpec, Capture]:
    """The calls of a capture to learn from, selected and with aliases merged, and the window
    to learn them on: the capture's own unless one is given, and a given one that differs from
    the capture's is refused (a model must be served with the window it was trained on)."""
    capture = read_capture(capture_dir)
    if capture.table.num_rows == 0:
        hint = (
            f"; still being written: {', '.join(capture.pending)} (a capture file is finished "
            "when it rotates, every 300 s by default, or when meshwatch stops)"
            if capture.pending
            else ""
        )
        raise ModelError(f"no finished capture files (calls-*.parquet) in {capture_dir}{hint}")
    meta = capture.meta
    if meta is not None and window is not None and window.window != meta.window_seconds:
        raise ModelError(
            f"the capture in {capture_dir} was taken with {meta.window_seconds:g}s windows, not "
            f"{window.window:g}s: omit --window to use the capture's, or capture again with "
            f"serve --window {window.window:g}"
        )
    if window is None:
        window = (
            WindowSpec(meta.window_seconds, meta.window_slices)
            if meta is not None
            else WindowSpec()
        )
    calls = merge_aliases(list(selection.apply(calls_from_table(capture.table))))
    return calls, window, capture


def train_from_capture(
    capture_dir: Path,
    out: Path,
    window: WindowSpec | None,
    params: TrainingParams,
    say: Callable[[str], None],
    selection: Selection,
    min_baseline_windows: int,
) -> list[Path]:
    """Learn from a capture and save the model; says what the data holds and what to do when
    it is too little (``ModelError``)."""
    calls, spec, capture = captured_calls(capture_dir, window, selection)
    source = capture.meta.source if capture.meta is not None else "live"
    say(
        f"training on {len(calls):,} of {capture.table.num_rows:,} captured calls from "
        f"{capture_dir} ({source}), {spec.window:g}s windows"
    )
    proof = evidence(review(calls, spec), spec, min_baseline_windows)
    for line in proof.lines(spec):
        say(line)
    try:
        with tqdm(total=len(calls), unit="call", desc="replaying", disable=None) as bar:
            bundle = learn_from_calls(_chunks(iter(calls)), spec, params, out.stem, bar)
    except ModelError as exc:
        advice = (
            f" Try --window {proof.suggested_window:g} (and serve with it), or capture longer."
            if proof.suggested_window is not None
            else " Capture longer."
        )
        raise ModelError(f"{exc}. {proof.lines(spec)[0]}.{advice}") from exc
    paths = save_bundle(bundle, out)
    card = bundle.card
    if card.calibration_note:
        say(f"WARNING: {card.calibration_note}")
    say(
        f"model {out}: {card.edge_count} edges learned with statistics "
        f"({len(bundle.baseline.known_edges)} known to the novel-edge rule), "
        f"{card.training_rows} training and {card.calibration_rows} calibration windows, "
        f"threshold {card.threshold:.4f} for {card.target_false_alerts_per_day:g} false alerts/day"
    )
    return paths


def review_capture(
    capture_dir: Path, window: WindowSpec | None, selection: Selection, min_baseline_windows: int
) -> list[str]:
    """``meshwatch baseline review``: the edges a capture would teach, with their evidence."""
    calls, spec, capture = captured_calls(capture_dir, window, selection)
    reviews = review(calls, spec)
    meta = capture.meta
    lines = [
        f"capture {capture_dir}: {capture.files} file(s), {capture.table.num_rows:,} calls"
        + (
            f", taken by meshwatch {meta.version} ({meta.source}) with {meta.window_seconds:g}s "
            f"windows, trust domain {meta.trust_domain}"
            if meta is not None
            else " (no capture metadata: written before captures described themselves)"
        ),
        f"{len(calls):,} calls selected; reviewing on {spec.window:g}s windows",
        f"{'edge':<64} {'calls':>8} {'windows':>7} {'first seen':<20} {'last seen':<20} identity",
    ]
    for r in reviews:
        thin = " (thin)" if r.windows < min_baseline_windows else ""
        lines.append(
            f"{r.edge!s:<64} {r.calls:>8,} {r.windows:>7}{thin} {iso(r.first_seen)[:19]:<20} "
            f"{iso(r.last_seen)[:19]:<20} {r.identity}"
        )
    lines += evidence(reviews, spec, min_baseline_windows).lines(spec)
    lines.append(
        "leave an edge or a time range out with train --exclude-edge 'SRC->DST[:PORT]', "
        "--since, --until"
    )
    return lines


def review_model(model_path: Path, min_baseline_windows: int) -> list[str]:
    """``meshwatch baseline review --model``: what a learned baseline holds, edge by edge."""
    bundle = load_bundle(model_path)
    card, baseline = bundle.card, bundle.baseline
    lines = [
        f"model {model_path}: {card.name!r}, {card.window_seconds:g}s windows, learned "
        f"{iso(baseline.learned_from)[:19]} to {iso(baseline.learned_until)[:19]} "
        f"from {baseline.calls:,} calls",
        f"{len(baseline.known_edges)} known edges (never flagged as new), {len(baseline.edges)} "
        f"with statistics; {len(baseline.approved)} caller/callee pair(s) approved since",
        f"{'edge':<64} {'calls':>8} {'windows':>7} {'first seen':<20} judged   identity",
    ]
    for edge in sorted(baseline.known_edges):
        learned = baseline.edges.get(edge)
        source = baseline.actors.get(edge.source)
        identity = identity_quality(source) if source is not None else "not recorded"
        if learned is None:
            lines.append(
                f"{edge!s:<64} {'-':>8} {'-':>7} {'-':<20} novel-edge rule only   {identity}"
            )
            continue
        judged = "yes" if learned.windows >= min_baseline_windows else "no (thin: warming up)"
        lines.append(
            f"{edge!s:<64} {learned.calls:>8,} {learned.windows:>7} "
            f"{iso(learned.first_seen)[:19]:<20} {judged:<8} {identity}"
        )
    lines.append("to forget an edge learned by mistake, retrain with train --exclude-edge")
    return lines


def evaluation_profile(name: str, config_file: Path | None) -> EvalConfig:
    if config_file is not None:
        text = config_file.read_text(encoding="utf-8")
    else:
        text = (
            resources.files("meshwatch.simulation")
            .joinpath("evaluate.yaml")
            .read_text(encoding="utf-8")
        )
    profiles = yaml.safe_load(text)
    if not isinstance(profiles, dict) or name not in profiles:
        raise ValueError(f"no evaluation profile {name!r} (have: {', '.join(profiles or {})})")
    return EvalConfig.from_mapping(profiles[name])


def run_evaluation(
    config: EvalConfig,
    topologies: list[str],
    say: Callable[[str], None],
    report_file: Path | None = None,
) -> list[EvalReport]:
    reports = []
    for name in topologies:
        report = evaluate(TOPOLOGIES[name], config, progress=lambda m: say(f"  .. {m}"))
        for line in report.table():
            say(line)
        reports.append(report)
    if report_file is not None:
        report_file.write_text(json.dumps([_report_doc(r) for r in reports], indent=2))
    return reports


def _report_doc(report: EvalReport) -> dict[str, Any]:
    return {
        "topology": report.topology,
        "false_alerts_per_24h": report.false_alerts_per_24h,
        "scenarios": [
            {
                "name": s.name,
                "recall": s.recall,
                "recall_in_time": s.recall_in_time,
                "precision": s.precision,
                "ttd": s.ttd,
                "false_alerts_per_24h": s.false_per_24h,
                "low_and_slow": s.low_and_slow,
                "injections": [
                    {"edge": list(d["edge"]), "start": d["start"], "ttd": d["ttd"]}
                    for d in s.injected
                ],
            }
            for s in report.scenarios
        ],
    }
