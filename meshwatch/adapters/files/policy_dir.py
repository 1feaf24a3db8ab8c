"""The directory policy sink: one YAML file per managed AuthorizationPolicy.

For GitOps (a controller such as Argo CD or Flux applies the directory) and for trying
defence without a cluster. A file is written to a temporary name in the same directory,
flushed to disk and renamed over the old one, so a reader never sees half a policy. A file
that is not meshwatch's (no managed-by label) or not YAML is never overwritten or removed;
unreadable files are skipped when listing and counted in ``unreadable``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from meshwatch.errors import ForeignPolicyError, PolicySinkError
from meshwatch.policy.objects import is_managed

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$")


class DirectoryPolicySink:
    name = "directory"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.unreadable = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PolicySinkError(f"cannot create policy directory {directory}: {exc}") from exc

    def path(self, namespace: str, name: str) -> Path:
        if not (_SAFE.match(namespace) and _SAFE.match(name)):
            raise PolicySinkError(f"refusing an unsafe file name for {namespace}/{name}")
        return self.directory / f"{namespace}.{name}.yaml"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.unreadable += 1
            log.warning("policy file %s is unreadable, skipped: %s", path, exc)
            return None
        return doc if isinstance(doc, dict) else None

    def list(self) -> list[dict[str, Any]]:
        """Every managed policy in the directory."""
        out = []
        for path in sorted(self.directory.glob("*.yaml")):
            doc = self._read(path)
            if doc is not None and doc.get("kind") == "AuthorizationPolicy" and is_managed(doc):
                out.append(doc)
        return out

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        target = self.path(str(meta["namespace"]), str(meta["name"]))
        if target.exists():
            current = self._read(target)
            if current is None or not is_managed(current):
                raise ForeignPolicyError(f"{target} exists and is not managed by meshwatch")
        text = yaml.safe_dump(dict(obj), sort_keys=False)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise PolicySinkError(f"cannot write {target}: {exc}", retryable=True) from exc
        return dict(obj)

    def delete(self, namespace: str, name: str) -> bool:
        target = self.path(namespace, name)
        if not target.exists():
            return False
        current = self._read(target)
        if current is None or not is_managed(current):
            raise ForeignPolicyError(f"{target} is not managed by meshwatch: not removed")
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise PolicySinkError(f"cannot remove {target}: {exc}", retryable=True) from exc
        return True

    def close(self) -> None:
        """Nothing held open."""
