"""Read the optional YAML settings file (a mapping of setting names to values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshwatch.errors import SettingsError


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's mapping; ``SettingsError`` (one line, naming file and line) when unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SettingsError(f"invalid config file {path}{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"invalid config file {path}: expected a mapping of settings")
    return {str(k): v for k, v in data.items()}
