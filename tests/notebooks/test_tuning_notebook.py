"""The tuning notebook runs headless on small generated data, and is committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from meshwatch.adapters.files.models import load_bundle

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "tune_baseline.ipynb"


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def _tree(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def test_notebook_runs_and_writes_a_loadable_model(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MESHWATCH_NB_CAPTURE", raising=False)
    monkeypatch.setenv("MESHWATCH_NB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MESHWATCH_NB_HOURS", "8")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    before = _tree(NOTEBOOK.parent)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    assert _tree(NOTEBOOK.parent) == before, "the notebook wrote into the repository"
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


def test_notebook_never_writes_into_a_capture_directory_without_finished_files(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "calls-20261130T000000.parquet.tmp").write_bytes(b"")
    monkeypatch.setenv("MESHWATCH_NB_CAPTURE", str(capture))
    monkeypatch.delenv("MESHWATCH_NB_MODELS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(CellExecutionError, match="no finished calls-"):
        client.execute()
    assert sorted(p.name for p in capture.iterdir()) == ["calls-20261130T000000.parquet.tmp"]
