"""The tuning notebook runs headless, shows its plots inline, writes only where it is told,
and refuses the mistakes a person tuning their own mesh would otherwise make silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from meshwatch.adapters.files.models import load_bundle
from tests.factories import simulated_capture

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "tune_baseline.ipynb"
CHOSEN = re.compile(
    r"chosen: (\d+) trees, contamination (\S+): recall ([\d.]+), low-and-slow ([\d.]+)"
)


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def _tree(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def run_notebook(workdir: Path, env: dict[str, str], monkeypatch: Any, timeout: int = 600) -> Any:
    """Execute the notebook with ``MESHWATCH_NB_*`` from ``env`` (others unset) and the
    default matplotlib backend of a kernel (inline images); the executed notebook."""
    for name in ("CAPTURE", "MODELS", "NAME", "OVERWRITE", "PLOTS", "WINDOW", "HOURS"):
        monkeypatch.delenv(f"MESHWATCH_NB_{name}", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def outputs(nb: Any, mime: str) -> list[str]:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and mime == "text/plain":
                found.append(out["text"])
            elif mime in out.get("data", {}):
                found.append(out["data"][mime])
    return found


def test_notebook_tunes_on_replayed_attacks_and_saves_a_named_model_where_told(
    tmp_path: Path, monkeypatch: Any
) -> None:
    before = _tree(NOTEBOOK.parent)
    nb = run_notebook(
        tmp_path,
        {
            "MESHWATCH_NB_MODELS": str(tmp_path / "models"),
            "MESHWATCH_NB_NAME": "shop-v2",
            "MESHWATCH_NB_PLOTS": str(tmp_path / "plots"),
            "MESHWATCH_NB_HOURS": "8",
        },
        monkeypatch,
    )
    assert _tree(NOTEBOOK.parent) == before, "the notebook wrote into the repository"
    bundle = load_bundle(tmp_path / "models" / "shop-v2.skops", 60.0)  # the name asked for
    assert bundle.card.name == "shop-v2" and bundle.card.edge_count >= 5
    assert bundle.card.to_doc()["training_from_time"].startswith("2026-01-05T")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "shop-v2-recall.png",
        "shop-v2-scores.png",
    ]
    assert len(outputs(nb, "image/png")) >= 2  # inline, not a forced Agg backend
    text = "".join(outputs(nb, "text/plain"))
    (chosen,) = CHOSEN.findall(text)
    _trees, _, recall, _ = chosen
    assert float(recall) >= 0.5  # attacks replayed as calls are told apart from normal windows
    assert "attacked edges:" in text and "held out after it" in text
    assert any("peer metadata" in html for html in outputs(nb, "text/html"))  # the review table


def test_notebook_refuses_to_overwrite_a_model_before_tuning(
    tmp_path: Path, monkeypatch: Any
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "shop.skops").write_bytes(b"earlier model")
    with pytest.raises(CellExecutionError, match="exists: choose another MESHWATCH_NB_NAME"):
        run_notebook(
            tmp_path,
            {"MESHWATCH_NB_MODELS": str(models), "MESHWATCH_NB_NAME": "shop"},
            monkeypatch,
            timeout=60,
        )
    assert (models / "shop.skops").read_bytes() == b"earlier model"


def test_notebook_refuses_a_window_other_than_the_captures(
    tmp_path: Path, monkeypatch: Any
) -> None:
    capture = simulated_capture(tmp_path / "capture", 600, window=10.0, seed=2)
    files = _tree(capture)
    with pytest.raises(CellExecutionError, match="taken with 10s windows, not 60s"):
        run_notebook(
            tmp_path,
            {"MESHWATCH_NB_CAPTURE": str(capture), "MESHWATCH_NB_WINDOW": "60"},
            monkeypatch,
            timeout=120,
        )
    assert _tree(capture) == files


def test_notebook_never_writes_into_a_capture_directory_without_finished_files(
    tmp_path: Path, monkeypatch: Any
) -> None:
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "calls-20261130T000000.parquet.tmp").write_bytes(b"")
    with pytest.raises(CellExecutionError, match=r"no finished calls-.*still being written"):
        run_notebook(tmp_path, {"MESHWATCH_NB_CAPTURE": str(capture)}, monkeypatch, timeout=120)
    assert sorted(p.name for p in capture.iterdir()) == ["calls-20261130T000000.parquet.tmp"]


def test_notebook_refuses_a_mistyped_capture_path_instead_of_simulating(
    tmp_path: Path, monkeypatch: Any
) -> None:  # Found 1: it used to generate Bookinfo traffic into that directory
    missing = tmp_path / "captrue"
    with pytest.raises(CellExecutionError, match="no capture directory"):
        run_notebook(tmp_path, {"MESHWATCH_NB_CAPTURE": str(missing)}, monkeypatch, timeout=120)
    assert not missing.exists()
