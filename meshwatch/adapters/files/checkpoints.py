"""Learning checkpoints in the state directory: one JSON document, replaced atomically.

JSON, never pickle: a state directory may be restored from a backup that someone else
could have written. The document's shape is ``detection.learning.Learning.to_doc``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshwatch.adapters.files.models import write_atomic
from meshwatch.errors import ModelError

MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024


def save_checkpoint(path: Path, doc: dict[str, Any]) -> int:
    """Write the checkpoint; returns its size in bytes (``OSError`` on failure)."""
    data = json.dumps(doc, separators=(",", ":")).encode()
    write_atomic(path, data)
    return len(data)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint, or None when there is none (``ModelError`` when it is unreadable)."""
    try:
        if path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise ModelError(f"{path} is larger than {MAX_CHECKPOINT_BYTES} bytes")
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read learning checkpoint {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"learning checkpoint {path} is not a JSON object")
    return doc
