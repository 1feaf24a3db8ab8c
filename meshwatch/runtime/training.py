"""``meshwatch train`` and ``meshwatch evaluate``: files in, models and reports out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from meshwatch.adapters.files.capture import calls_from_table, read_capture
from meshwatch.adapters.files.models import save_bundle
from meshwatch.calls import Call, WindowSpec
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.models import ModelBundle, TrainingParams
from meshwatch.errors import ModelError
from meshwatch.monitor.replaying import Replayer, replay_monitor
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


def train_from_capture(
    capture_dir: Path,
    out: Path,
    window: WindowSpec,
    params: TrainingParams,
    say: Callable[[str], None],
) -> list[Path]:
    table = read_capture(capture_dir)
    if table.num_rows == 0:
        raise ModelError(f"no finished capture files (calls-*.parquet) in {capture_dir}")
    say(f"training on {table.num_rows:,} captured calls from {capture_dir}")
    with tqdm(total=table.num_rows, unit="call", desc="replaying", disable=None) as bar:
        bundle = learn_from_calls(_chunks(calls_from_table(table)), window, params, out.stem, bar)
    paths = save_bundle(bundle, out)
    card = bundle.card
    if card.calibration_note:
        say(f"WARNING: {card.calibration_note}")
    say(
        f"model {out}: {card.edge_count} edges, {card.training_rows} training and {card.calibration_rows} "
        f"calibration windows, threshold {card.threshold:.4f} for {card.target_false_alerts_per_day:g} false alerts/day"
    )
    return paths


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
