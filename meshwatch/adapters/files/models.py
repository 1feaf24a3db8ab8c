"""Models and learned state on disk: skops for the estimator (never pickle), JSON for the
card and the baseline, written atomically.

``NAME.skops`` holds the estimator, ``NAME.json`` its card, ``NAME.baseline.json`` the
per-edge baseline it normalises with. Loading refuses a file whose skops type list holds
anything but the estimator and scikit-learn's tree structure, and refuses a card that does
not match the running code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from meshwatch.detection.baseline import Baseline
from meshwatch.detection.forest import EdgeIsolationForest
from meshwatch.detection.models import ModelBundle, ModelCard
from meshwatch.detection.thresholds import Threshold
from meshwatch.errors import ModelError

TRUSTED_TYPES = frozenset(
    {"meshwatch.detection.forest.EdgeIsolationForest", "sklearn.tree._tree.Tree"}
)


def _paths(model_path: Path) -> tuple[Path, Path, Path]:
    stem = model_path.with_suffix("")
    return model_path, stem.with_suffix(".json"), Path(f"{stem}.baseline.json")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bundle(bundle: ModelBundle, model_path: Path) -> list[Path]:
    """Write the three files; returns their paths."""
    model_file, card_file, baseline_file = _paths(model_path)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "model.skops"
        sio.dump(bundle.model, scratch, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        model_bytes = scratch.read_bytes()
    baseline_bytes = json.dumps(bundle.baseline.to_doc(), separators=(",", ":")).encode()
    card = bundle.card.to_doc()
    card["files"] = {
        "model": {"name": model_file.name, "sha256": hashlib.sha256(model_bytes).hexdigest()},
        "baseline": {
            "name": baseline_file.name,
            "sha256": hashlib.sha256(baseline_bytes).hexdigest(),
        },
    }
    write_atomic(model_file, model_bytes)
    write_atomic(baseline_file, baseline_bytes)
    write_atomic(card_file, json.dumps(card, indent=2).encode())
    return [model_file, card_file, baseline_file]


def read_card(model_path: Path) -> tuple[ModelCard, dict[str, Any]]:
    _, card_file, _ = _paths(model_path)
    try:
        doc = json.loads(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"model card {card_file} is missing: a model without its card is refused"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"model card {card_file} is unreadable: {exc}") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"model card {card_file} is not a JSON object")
    files = _file_hashes(card_file, doc.pop("files", None))
    return ModelCard.from_doc(doc), files


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _file_hashes(card_file: Path, files: Any) -> dict[str, str]:
    """The card's sha256 of the model and of the baseline; both are mandatory, so neither
    file can be swapped or edited without the card saying so."""
    out = {}
    for label in ("model", "baseline"):
        entry = files.get(label) if isinstance(files, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ModelError(
                f"model card {card_file} has no valid sha256 for its {label} file: "
                "a model is only loaded with both hashes"
            )
        out[label] = digest
    return out


def load_bundle(model_path: Path, window_seconds: float | None = None) -> ModelBundle:
    """Load and verify a model; ``ModelError`` says why one is refused."""
    model_file, _, baseline_file = _paths(model_path)
    card, files = read_card(model_path)
    card.check_compatible(window_seconds)
    try:
        model_bytes = model_file.read_bytes()
        baseline_bytes = baseline_file.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model files for {model_path}: {exc}") from exc
    for label, data in (("model", model_bytes), ("baseline", baseline_bytes)):
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), files[label]):
            raise ModelError(
                f"{label} file of {model_path} does not match its card (sha256 differs)"
            )
    try:
        untrusted = set(sio.get_untrusted_types(data=model_bytes))
        if not untrusted <= TRUSTED_TYPES:
            raise ModelError(
                f"refusing {model_file}: it contains types meshwatch does not trust: {sorted(untrusted - TRUSTED_TYPES)}"
            )
        model = sio.loads(model_bytes, trusted=sorted(untrusted))
        baseline = Baseline.from_doc(json.loads(baseline_bytes))
    except ModelError:
        raise
    except Exception as exc:  # skops/zip/json errors: the file is not a meshwatch model
        raise ModelError(f"cannot load {model_file}: {exc}") from exc
    if not isinstance(model, EdgeIsolationForest):
        raise ModelError(f"{model_file} holds a {type(model).__name__}, not a meshwatch model")
    return ModelBundle(
        model, Threshold(card.threshold, card.per_window_false_alert_rate), card, baseline
    )
