"""`meshwatch train` from Parquet captures, then the model is served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshwatch.adapters.files.capture import CaptureWriter
from meshwatch.adapters.files.models import load_bundle
from meshwatch.simulation.evaluation import EPOCH
from meshwatch.simulation.topologies import BOOKINFO
from meshwatch.simulation.traffic import Simulator


def test_train_from_capture_writes_model_card_and_baseline(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    writer = CaptureWriter(capture, rotate_seconds=1e9, rotate_rows=8_000)  # several files
    for batch in Simulator(BOOKINFO, seed=5, rate_scale=0.25).calls(EPOCH, EPOCH + 6 * 3600):
        writer.append(batch)
        if writer.pending >= 4_000:
            writer.flush()
    writer.close()
    assert len(list(capture.glob("calls-*.parquet"))) >= 2
    out = tmp_path / "models" / "shop.skops"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshwatch",
            "train",
            "--from",
            str(capture),
            "--out",
            str(out),
            "--n-estimators",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "threshold" in proc.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["edge_count"] == 6
    assert card["training_until"] - card["training_from"] > 5 * 3600
    assert card["params"]["n_estimators"] == 50
    bundle = load_bundle(out, 60.0)
    assert ("bookinfo/details", "external/www.googleapis.com", 443) in bundle.baseline.known_edges


def test_train_without_captures_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshwatch",
            "train",
            "--from",
            str(tmp_path),
            "--out",
            str(tmp_path / "m.skops"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "no finished capture files" in proc.stderr
