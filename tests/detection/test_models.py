"""Models on disk: skops round trip, card checks, refusal of untrusted content."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from meshwatch.adapters.files.models import load_bundle, save_bundle
from meshwatch.errors import ModelError
from tests.commands import serve_until_it_fails
from tests.monitor.test_engine import learned


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    _, engine, _ = learned(hours=2)
    path = tmp_path_factory.mktemp("models") / "shop.skops"
    assert engine.bundle is not None
    save_bundle(engine.bundle, path)
    return path, engine.bundle


def test_round_trip_keeps_scores_card_and_baseline(saved: tuple[Path, object]) -> None:
    path, bundle = saved
    loaded = load_bundle(path, 60.0)
    X = np.random.default_rng(0).normal(size=(20, len(loaded.card.feature_columns)))
    np.testing.assert_allclose(loaded.anomaly_scores(X), bundle.anomaly_scores(X))  # type: ignore[attr-defined]
    assert loaded.threshold.value == bundle.threshold.value  # type: ignore[attr-defined]
    assert loaded.baseline.known_edges == bundle.baseline.known_edges  # type: ignore[attr-defined]
    card = json.loads(path.with_suffix(".json").read_text())
    for key in (
        "sklearn_version",
        "feature_columns",
        "training_from",
        "training_until",
        "edge_count",
        "threshold",
        "per_window_false_alert_rate",
    ):
        assert key in card
    assert not path.read_bytes().startswith(b"\x80"), "not a pickle"


def test_a_card_from_other_code_is_refused_with_the_reason(
    saved: tuple[Path, object], tmp_path: Path
) -> None:
    path, _ = saved
    for name in ("shop.skops", "shop.json", "shop.baseline.json"):
        (tmp_path / name).write_bytes((path.parent / name).read_bytes())
    card_file = tmp_path / "shop.json"
    card = json.loads(card_file.read_text())
    card["feature_columns"] = card["feature_columns"][:-1]
    card["sklearn_version"] = "0.24.2"
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"feature columns .* scikit-learn 0\.24\.2"):
        load_bundle(tmp_path / "shop.skops", 60.0)
    with pytest.raises(ModelError, match="windows"):
        load_bundle(path, 30.0)


def test_untrusted_or_tampered_files_are_refused(
    saved: tuple[Path, object], tmp_path: Path
) -> None:
    path, _ = saved
    for name in ("shop.skops", "shop.json", "shop.baseline.json"):
        (tmp_path / name).write_bytes((path.parent / name).read_bytes())
    (tmp_path / "shop.baseline.json").write_text("{}")
    with pytest.raises(ModelError, match="sha256"):
        load_bundle(tmp_path / "shop.skops", 60.0)
    evil = tmp_path / "evil.skops"
    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), evil)
    card = json.loads(path.with_suffix(".json").read_text())
    card.pop("files")
    (tmp_path / "evil.json").write_text(json.dumps(card))
    (tmp_path / "evil.baseline.json").write_text((path.parent / "shop.baseline.json").read_text())
    with pytest.raises(ModelError, match="no valid sha256"):
        load_bundle(evil, 60.0)  # a card without hashes is refused outright
    card["files"] = {
        label: {"sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
        for label, f in (("model", evil), ("baseline", tmp_path / "evil.baseline.json"))
    }
    (tmp_path / "evil.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not a meshwatch model"):
        load_bundle(evil, 60.0)  # hashes that match still do not make it a meshwatch model
    with pytest.raises(ModelError, match=r"card .* is missing"):
        load_bundle(tmp_path / "nothing.skops", 60.0)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: [c], "not a JSON object"),
        (lambda c: 5, "not a JSON object"),
        (lambda c: {**c, "files": "model.skops"}, "no valid sha256"),
        (lambda c: {**c, "files": {**c["files"], "model": "x"}}, "no valid sha256"),
        (
            lambda c: {**c, "files": {"model": c["files"]["model"]}},
            "no valid sha256 for its baseline",
        ),
        (lambda c: {**c, "files": {**c["files"], "model": {"sha256": ""}}}, "no valid sha256"),
        (lambda c: {**c, "files": {**c["files"], "model": {"sha256": None}}}, "no valid sha256"),
        (lambda c: {**c, "window_seconds": "60"}, "'window_seconds' must be"),
        (lambda c: {**c, "threshold": "high"}, "'threshold' must be"),
        (lambda c: {k: v for k, v in c.items() if k != "edge_count"}, "'edge_count' must be"),
    ],
)
def test_a_malformed_card_is_refused_with_one_line(
    saved: tuple[Path, object], tmp_path: Path, damage: Any, message: str
) -> None:
    path, _ = saved
    for name in ("shop.skops", "shop.baseline.json"):
        (tmp_path / name).write_bytes((path.parent / name).read_bytes())
    card = json.loads(path.with_suffix(".json").read_text())
    (tmp_path / "shop.json").write_text(json.dumps(damage(card)))
    with pytest.raises(ModelError, match=message):
        load_bundle(tmp_path / "shop.skops", 60.0)


def test_serve_refuses_an_incompatible_model_with_a_clear_one_line_error(
    saved: tuple[Path, object],
) -> None:
    path, _ = saved
    proc = serve_until_it_fails("--model", str(path), "--mode", "observe", "--window", "30")
    assert proc.returncode == 2
    assert "trained on 60s windows, running 30s" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
