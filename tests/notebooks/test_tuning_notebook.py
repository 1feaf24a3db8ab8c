"""The tuning notebook runs headless on small generated data, and is committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from meshwatch.adapters.files.models import load_bundle

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "tune_baseline.ipynb"


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_and_writes_a_loadable_model(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MESHWATCH_NB_CAPTURE", str(tmp_path / "capture"))
    monkeypatch.setenv("MESHWATCH_NB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MESHWATCH_NB_HOURS", "8")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    bundle = load_bundle(tmp_path / "models" / "bookinfo-tuned.skops", 60.0)
    assert bundle.card.edge_count >= 5
    assert (tmp_path / "models" / "bookinfo-tuned.json").exists()
    assert any(
        "recall" in str(o) or "contamination" in str(o)
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert os.environ["MESHWATCH_NB_HOURS"] == "8"
