"""``meshwatch audit`` on broken and hostile input: a ``file:line`` input error (exit 2) for
each problem, the rest still audited, and never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.adapters.files.manifests import MAX_FILE_BYTES, load
from meshwatch.compliance.auditing import audit
from meshwatch.istio.snapshot import Snapshot
from tests.compliance.grid import FIXTURES

POSITIVE = FIXTURES / "allow-all-rule" / "positive.yaml"  # one MW0203 error


def audit_bytes(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", "audit", "--format", "json", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


BROKEN = {
    "list-items.yaml": "apiVersion: v1\nkind: List\nitems: 5\n",
    "empty.yaml": "",
    "scalar.yaml": "just a string\n",
    "sequence.yaml": "- a\n- b\n",
    "spec.yaml": (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: p, namespace: shop}\nspec: 5\n"
    ),
    "selector.yaml": (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: pa, namespace: shop}\nspec:\n  selector: x\n"
    ),
}


def test_each_broken_input_is_a_file_line_error_and_the_rest_is_audited(tmp_path: Path) -> None:
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "good.yaml").write_text(POSITIVE.read_text())
    os.symlink(tmp_path / "loop-b.yaml", tmp_path / "loop-a.yaml")
    os.symlink(tmp_path / "loop-a.yaml", tmp_path / "loop-b.yaml")
    proc = audit_bytes([str(tmp_path)])
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    errors = "\n".join(doc["errors"])
    assert f"{tmp_path}/list-items.yaml:1: List items must be a list" in errors
    assert f"{tmp_path}/empty.yaml: empty" in errors
    assert f"{tmp_path}/scalar.yaml:1: a document must be a Kubernetes object" in errors
    assert f"{tmp_path}/sequence.yaml:1: a document must be a Kubernetes object" in errors
    assert f"{tmp_path}/spec.yaml:1: AuthorizationPolicy p: spec must be a mapping" in errors
    assert (
        f"{tmp_path}/selector.yaml:1: PeerAuthentication pa: spec.selector must be a mapping"
        in errors
    )
    assert "loop-a.yaml: broken or looping symlink" in errors
    assert any(f["code"] == "MW0203" for f in doc["findings"]), "the good file is still audited"


def test_stdin_that_is_not_text_is_an_input_error() -> None:
    proc = audit_bytes(["-"], stdin=b"kind: \xff\xfe\xfa\x00 broken")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert "not UTF-8 or UTF-16 text" in "".join(json.loads(proc.stdout)["errors"])
    latin = POSITIVE.read_text().replace("metadata:", "# caf\xe9\nmetadata:").encode("latin-1")
    proc = audit_bytes(["-"], stdin=latin)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr


def test_utf16_manifests_with_a_bom_are_read() -> None:
    proc = audit_bytes(["-"], stdin=POSITIVE.read_text().encode("utf-16"))
    assert proc.returncode == 1
    assert [f["code"] for f in json.loads(proc.stdout)["findings"]] == ["MW0203"]


def test_stdin_has_the_same_size_cap_as_files() -> None:
    result = load(["-"], io.BytesIO(b"#" * (MAX_FILE_BYTES + 1)))
    assert result.errors == ["<stdin>: larger than 32 MiB, skipped"]


def test_a_garbage_kubeconfig_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meshwatch", "audit", "--cluster", "--kubeconfig", __file__],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout


_CORPUS = [
    doc
    for path in sorted(FIXTURES.rglob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict)
]
_ODD = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just({"matchLabels": 5}),
    st.just([{"from": 5}]),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutated(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _mutated(copy[path[0]], path[1:], value)  # type: ignore[index]
    return copy


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_manifests_never_crash_the_loader_or_any_check(data: st.DataObject) -> None:
    docs = data.draw(st.lists(st.sampled_from(_CORPUS), min_size=1, max_size=4))
    mutated = []
    for doc in docs:
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(_paths(doc)))
            doc = _mutated(doc, path, data.draw(_ODD))
        mutated.append(doc)
    text = yaml.safe_dump_all(mutated)
    loaded = load(["-"], io.BytesIO(text.encode()))
    result = audit(Snapshot.build(loaded.resources, 0.0), [])
    assert all(f.resource is not None for f in result.findings)
