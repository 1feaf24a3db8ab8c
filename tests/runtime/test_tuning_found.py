"""Regression tests for what issue 15 found when a person tuned a baseline for their own mesh
(the notebook's items are in tests/notebooks, the end-to-end run in test_tuning_workflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.adapters.files.capture import CaptureMeta, CaptureWriter
from meshwatch.calls import Workload
from meshwatch.simulation.evaluation import EPOCH
from tests.commands import meshwatch_cli, serve_until_it_fails
from tests.factories import make_call, simulated_capture

SHIPPED_MODEL = Path(__file__).parents[2] / "models" / "bookinfo.skops"


def test_train_help_shows_the_window_default() -> None:  # Found 2
    proc = meshwatch_cli("train", "--help")
    assert proc.returncode == 0
    assert "default: the capture's own, else 60" in " ".join(proc.stdout.split())


@pytest.mark.parametrize("command", [("train", "--out", "m.skops"), ("baseline", "review")])
@pytest.mark.parametrize("window", ["0", "-5", "nan", "100000"])
def test_every_command_refuses_a_window_out_of_bounds(
    tmp_path: Path, command: tuple[str, ...], window: str
) -> None:  # Found 2: --window 0 crashed, -5 hung at 100 % CPU
    capture = simulated_capture(tmp_path / "capture", 600)
    proc = meshwatch_cli(*command, "--from", str(capture), "--window", window, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "window" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_with_another_window_says_which_window_to_pass() -> None:  # Found 2
    proc = serve_until_it_fails(
        "--mode", "observe", "--model", str(SHIPPED_MODEL), "--window", "10"
    )
    assert proc.returncode == 2
    assert "run with --window 60" in proc.stderr


def test_too_little_data_says_how_much_there_was_and_suggests_a_window(tmp_path: Path) -> None:
    capture = simulated_capture(tmp_path / "capture", 300)  # five minutes at 60 s windows
    proc = meshwatch_cli("train", "--from", str(capture), "--out", str(tmp_path / "m.skops"))
    assert proc.returncode == 2
    assert "need at least 50" in proc.stderr
    assert "data: 0.08 h over" in proc.stderr  # how much there was
    assert "Try --window" in proc.stderr  # what would work


def test_a_thin_but_trainable_capture_is_called_thin(tmp_path: Path) -> None:  # Found 3
    capture = simulated_capture(tmp_path / "capture", 2 * 3600)
    proc = meshwatch_cli(
        "train", "--from", str(capture), "--out", str(tmp_path / "m.skops"),
        "--min-baseline-windows", "200", "--n-estimators", "20",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "thin baseline:" in proc.stdout and "will stay warming up" in proc.stdout
    assert "--window" in proc.stdout  # a window that would give them enough


def test_only_unfinished_files_explain_rotation(tmp_path: Path) -> None:  # Found 3
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "calls-20261130T000000.parquet.tmp").write_bytes(b"")
    proc = meshwatch_cli("train", "--from", str(capture), "--out", str(tmp_path / "m.skops"))
    assert proc.returncode == 2
    assert "every 300 s by default" in proc.stderr


def test_principal_only_callers_are_merged_before_learning(tmp_path: Path) -> None:  # Found 4
    principal = "spiffe://cluster.local/ns/boutique/sa/checkoutservice"
    phantom = Workload(id="boutique/sa:checkoutservice", namespace="boutique", principal=principal)
    app = Workload(
        id="boutique/checkoutservice",
        namespace="boutique",
        workload="checkoutservice",
        app="checkoutservice",
        principal=principal,
    )
    cart = Workload(id="boutique/cartservice", namespace="boutique", app="cartservice")
    capture = tmp_path / "capture"
    writer = CaptureWriter(capture, rotate_seconds=1e9, rotate_rows=10**9, meta=CaptureMeta(60.0, 6, "cluster.local"))  # fmt: skip
    writer.append([make_call(EPOCH + i, phantom, cart) for i in range(5)])
    writer.append([make_call(EPOCH + 10 + i, app, cart) for i in range(50)])
    writer.close()
    proc = meshwatch_cli("baseline", "review", "--from", str(capture))
    assert proc.returncode == 0, proc.stderr
    assert "boutique/checkoutservice -> boutique/cartservice" in proc.stdout
    assert "sa:checkoutservice" not in proc.stdout
