"""Read Kubernetes/Istio YAML (files, directories, stdin) into compliance Resources.

Every document keeps its file and 1-based line. A file that does not parse is reported with
file and line and skipped; the other files are still read. The mesh config is taken from a
ConfigMap ``istio`` (or ``istio-<revision>``) ``data.mesh`` or an IstioOperator
``spec.meshConfig`` and becomes one ``MeshConfig`` resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from meshwatch.istio.meshconfig import mesh_config_resource
from meshwatch.istio.resources import Resource, from_object, shape_problems

YAML_SUFFIXES = (".yaml", ".yml")
# libyaml's C parser when PyYAML was built with it (the PyPI wheels are): ~10x faster, same
# safe constructor, same line marks.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FILE_BYTES = 32 * 1024 * 1024


@dataclass
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _documents(text: str, origin: str) -> Iterator[tuple[int, Any]]:
    """(line, object) of each YAML document; raises ``yaml.YAMLError`` at the first bad one."""
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node.start_mark.line + 1, loader.construct_document(node)
    finally:
        loader.dispose()


def resources_from_text(text: str, origin: str, result: LoadResult) -> None:
    """Parse one YAML stream into ``result`` (errors recorded, never raised)."""
    if not text.strip():
        result.errors.append(f"{origin}: empty, nothing to audit")
        return
    try:
        for line, obj in _documents(text, origin):
            if obj is None:
                continue  # an empty document between two ---
            for item, item_line in _expand(obj, line, origin, result):
                problems = shape_problems(item)
                if problems:  # reported, and left out of the audit; the rest goes on
                    name = _name(item)
                    result.errors.extend(f"{origin}:{item_line}: {name}{p}" for p in problems)
                    continue
                try:
                    mesh = mesh_config_resource(item, origin, item_line)
                except yaml.YAMLError as exc:
                    result.errors.append(
                        f"{origin}:{item_line}: invalid mesh config in ConfigMap: {_problem(exc)}"
                    )
                    mesh = None
                if mesh is not None:
                    result.resources.append(mesh)
                resource = from_object(item, origin, item_line)
                if resource is not None:
                    result.resources.append(resource)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        result.errors.append(f"{where}: invalid YAML: {_problem(exc)}")


def _problem(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc).strip()


def _name(item: Any) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get("metadata"), Mapping):
        return ""
    name = item["metadata"].get("name")
    return f"{item.get('kind')} {name}: " if isinstance(name, str) else ""


def _expand(obj: Any, line: int, origin: str, result: LoadResult) -> Iterator[tuple[Any, int]]:
    """The objects of a document: a ``kind: *List``'s items, or the document itself."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if isinstance(kind, str) and kind.endswith("List") and "items" in obj:
        items = obj.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            result.errors.append(f"{origin}:{line}: {kind} items must be a list, not {items!r:.40}")
            return
        yield from ((item, line) for item in items)
    else:
        yield obj, line


def _files(path: Path, result: LoadResult) -> Iterator[Path]:
    if not path.is_dir():
        yield path
        return
    for p in sorted(path.rglob("*")):
        if p.suffix not in YAML_SUFFIXES:
            continue
        if p.is_symlink() and not p.exists():
            result.errors.append(f"{p}: broken or looping symlink, skipped")
        elif p.is_file():
            yield p


def read_stream(stream: BinaryIO) -> str | None:
    """Standard input as text, read to at most ``MAX_FILE_BYTES`` (None when it is larger)."""
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return None
    return decode_text(data)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM, as Kubernetes tools accept;
    ``UnicodeDecodeError`` otherwise."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def load(paths: Iterable[str], stdin: BinaryIO | None = None) -> LoadResult:
    """Load files, directories (recursively, *.yaml / *.yml) and ``-`` (stdin), every one
    capped at ``MAX_FILE_BYTES``. Problems are recorded as ``file[:line]: …`` errors and the
    rest is still loaded."""
    result = LoadResult()
    for raw in paths:
        if raw == "-":
            try:
                text = read_stream(stdin) if stdin is not None else ""
            except UnicodeDecodeError as exc:
                result.errors.append(f"<stdin>: not UTF-8 or UTF-16 text ({exc.reason})")
                continue
            if text is None:
                result.errors.append(
                    f"<stdin>: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, skipped"
                )
                continue
            resources_from_text(text, "<stdin>", result)
            continue
        path = Path(raw)
        if not path.exists():
            result.errors.append(f"{raw}: no such file or directory")
            continue
        for file in _files(path, result):
            try:
                if file.stat().st_size > MAX_FILE_BYTES:
                    result.errors.append(
                        f"{file}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, skipped"
                    )
                    continue
                text = decode_text(file.read_bytes())
            except OSError as exc:
                result.errors.append(f"{file}: cannot read: {exc.strerror or exc}")
                continue
            except UnicodeDecodeError as exc:
                result.errors.append(f"{file}: not UTF-8 or UTF-16 text ({exc.reason})")
                continue
            resources_from_text(text, str(file), result)
    return result
