"""`meshwatch train` from Parquet captures, then the model is served."""

from __future__ import annotations

import json
from pathlib import Path

from meshwatch.adapters.files.capture import CaptureMeta, CaptureWriter
from meshwatch.adapters.files.models import load_bundle
from meshwatch.simulation.evaluation import EPOCH
from meshwatch.simulation.topologies import BOOKINFO
from meshwatch.simulation.traffic import Simulator
from tests.commands import meshwatch_cli
from tests.factories import simulated_capture


def test_train_from_capture_writes_model_card_and_baseline(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    meta = CaptureMeta(60.0, 6, "cluster.local", source="simulated")
    writer = CaptureWriter(capture, rotate_seconds=1e9, rotate_rows=8_000, meta=meta)
    for batch in Simulator(BOOKINFO, seed=5, rate_scale=0.25).calls(EPOCH, EPOCH + 6 * 3600):
        writer.append(batch)
        if writer.pending >= 4_000:
            writer.flush()
    writer.close()
    assert len(list(capture.glob("calls-*.parquet"))) >= 2
    out = tmp_path / "models" / "shop.skops"
    proc = meshwatch_cli("train", "--from", str(capture), "--out", str(out), "--n-estimators", "50")
    assert proc.returncode == 0, proc.stderr
    assert "threshold" in proc.stdout
    assert "(simulated), 60s windows" in proc.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["edge_count"] == 6
    assert card["training_until"] - card["training_from"] > 5 * 3600
    # readable times beside the epoch ones (Found 6), and a saved card loads back
    assert card["training_from_time"].startswith("2026-01-") and card[
        "training_from_time"
    ].endswith("Z")
    assert card["training_until_time"] > card["training_from_time"]
    assert card["params"]["n_estimators"] == 50
    bundle = load_bundle(out, 60.0)
    assert ("bookinfo/details", "external/www.googleapis.com", 443) in bundle.baseline.known_edges


def test_train_without_captures_is_a_clear_error(tmp_path: Path) -> None:
    proc = meshwatch_cli("train", "--from", str(tmp_path), "--out", str(tmp_path / "m.skops"))
    assert proc.returncode == 2
    assert "no finished capture files" in proc.stderr


def test_review_lists_edges_and_train_refuses_another_window_and_excludes_edges(
    tmp_path: Path,
) -> None:
    capture = simulated_capture(tmp_path / "capture", 3 * 3600, seed=6, source="simulated")

    review = meshwatch_cli("baseline", "review", "--from", str(capture))
    assert review.returncode == 0, review.stderr
    assert "bookinfo/details -> external/www.googleapis.com:443" in review.stdout
    assert "peer metadata" in review.stdout and "data: 3.00 h over 6 edges" in review.stdout
    wrong = meshwatch_cli(
        "train", "--from", str(capture), "--out", str(tmp_path / "m.skops"), "--window", "10"
    )
    assert wrong.returncode == 2
    assert "taken with 60s windows, not 10s" in wrong.stderr
    bad = meshwatch_cli(
        "train", "--from", str(capture), "--out", str(tmp_path / "m.skops"), "--window", "0"
    )
    assert bad.returncode == 2 and "positive number of seconds" in bad.stderr
    out = tmp_path / "m.skops"
    trained = meshwatch_cli(
        "train",
        "--from",
        str(capture),
        "--out",
        str(out),
        "--n-estimators",
        "30",
        "--exclude-edge",
        "bookinfo/details->external/*",
    )
    assert trained.returncode == 0, trained.stderr
    bundle = load_bundle(out, 60.0)
    assert ("bookinfo/details", "external/www.googleapis.com", 443) not in (
        bundle.baseline.known_edges
    )
    assert len(bundle.baseline.known_edges) == 5
