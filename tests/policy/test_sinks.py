"""Defence through real sinks: the official ``kubernetes`` client over HTTP to the in-repo
API emulator (server-side apply, 409, 404, 5xx, 429, timeouts, adoption after a restart,
foreign objects), and the directory sink's atomic files."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from meshwatch.adapters.files.policy_dir import DirectoryPolicySink
from meshwatch.adapters.kube.policy_sink import Backoff, KubePolicySink
from meshwatch.errors import ForeignPolicyError, PolicySinkError
from meshwatch.localmesh.kube_emulator import EmulatorThread, Fault
from meshwatch.policy.controlling import Defence
from meshwatch.policy.params import DefenceMode, DefenceParams
from tests.policy.defence_fixtures import ACTORS, anomaly, baseline

KEY = ("security.istio.io", "authorizationpolicies", "default", "meshwatch-deny-details")
FAST = Backoff(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def cluster() -> Iterator[EmulatorThread]:
    with EmulatorThread() as running:
        yield running


def client(cluster: EmulatorThread) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {cluster.emulator.token}"}
    return kubernetes.client.ApiClient(configuration)


def sink(cluster: EmulatorThread, **kw) -> KubePolicySink:
    return KubePolicySink(client(cluster), backoff=FAST, timeout=(1.0, 0.5), **kw)


def desired(mode: DefenceMode = DefenceMode.ENFORCE) -> dict:
    defence = Defence(DefenceParams(mode=mode))
    defence.raised(anomaly("default/ratings", "default/details"), time.time())
    [obj] = defence.reconcile(time.time(), ACTORS.get, baseline(), {}, list, True).apply
    return obj


def test_server_side_apply_as_meshwatch(cluster: EmulatorThread) -> None:
    s = sink(cluster)
    s.apply(desired())
    stored = cluster.emulator.objects[KEY]
    assert stored["spec"]["action"] == "DENY"
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshwatch"
    owners = set(cluster.emulator.owners[KEY].values())
    assert owners == {"meshwatch"}
    assert ("patch", "authorizationpolicies") in cluster.emulator.requests
    version = stored["metadata"]["resourceVersion"]
    s.apply(desired(DefenceMode.DRY_RUN))  # an update, same object
    stored = cluster.emulator.objects[KEY]
    assert stored["metadata"]["resourceVersion"] != version
    assert stored["metadata"]["annotations"]["istio.io/dry-run"] == "true"
    assert [o["metadata"]["name"] for o in s.list()] == ["meshwatch-deny-details"]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_errors_are_retried(cluster: EmulatorThread, status: int) -> None:
    cluster.emulator.faults.append(Fault("patch", "authorizationpolicies", status, times=2))
    s = sink(cluster)
    s.apply(desired())
    assert KEY in cluster.emulator.objects and s.retries == 2


def test_a_hung_api_server_times_out_and_is_retried(cluster: EmulatorThread) -> None:
    cluster.emulator.faults.append(Fault("patch", "authorizationpolicies", 0, times=1, delay=1.5))
    s = sink(cluster)
    s.apply(desired())
    assert KEY in cluster.emulator.objects and s.retries >= 1


def test_persistent_failure_is_an_error_not_a_hang(cluster: EmulatorThread) -> None:
    cluster.emulator.faults.append(Fault("patch", "authorizationpolicies", 500, times=10))
    with pytest.raises(PolicySinkError, match="500") as caught:
        sink(cluster).apply(desired())
    assert caught.value.retryable


def test_forbidden_is_not_retried(cluster: EmulatorThread) -> None:
    cluster.emulator.forbidden.add(("patch", "authorizationpolicies"))
    s = sink(cluster)
    with pytest.raises(PolicySinkError, match="403"):
        s.apply(desired())
    assert s.retries == 0


def test_foreign_object_of_the_same_name_is_never_touched(cluster: EmulatorThread) -> None:
    foreign = desired()
    foreign["metadata"]["labels"] = {"team": "payments"}
    foreign["spec"] = {"action": "ALLOW", "rules": [{}]}
    cluster.emulator.put(foreign)
    before = dict(cluster.emulator.objects[KEY])
    with pytest.raises(ForeignPolicyError, match="not managed by meshwatch"):
        sink(cluster).apply(desired())
    with pytest.raises(ForeignPolicyError):
        sink(cluster).delete("default", "meshwatch-deny-details")
    assert cluster.emulator.objects[KEY] == before


def test_a_field_owned_by_another_manager_is_a_conflict_never_forced(
    cluster: EmulatorThread,
) -> None:
    s = sink(cluster)
    s.apply(desired())
    edited = desired()
    edited["spec"]["rules"][0]["to"][0]["operation"]["ports"] = ["9999"]
    # someone else applies a change to meshwatch's object (kubectl apply --server-side)
    api = kubernetes.client.CustomObjectsApi(client(cluster))
    api.patch_namespaced_custom_object(
        "security.istio.io",
        "v1",
        "default",
        "authorizationpolicies",
        "meshwatch-deny-details",
        edited,
        field_manager="kubectl",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    with pytest.raises(ForeignPolicyError, match="another field manager"):
        s.apply(desired())
    ports = cluster.emulator.objects[KEY]["spec"]["rules"][0]["to"][0]["operation"]["ports"]
    assert ports == ["9999"]  # not overwritten


def test_delete_is_idempotent(cluster: EmulatorThread) -> None:
    s = sink(cluster)
    s.apply(desired())
    assert s.delete("default", "meshwatch-deny-details") is True
    assert s.delete("default", "meshwatch-deny-details") is False  # 404: already gone
    assert KEY not in cluster.emulator.objects


def test_directory_sink_writes_atomically(tmp_path: Path) -> None:
    s = DirectoryPolicySink(tmp_path)
    obj = desired()
    s.apply(obj)
    target = tmp_path / "default.meshwatch-deny-details.yaml"
    assert yaml.safe_load(target.read_text()) == obj
    # a reader polling the file while it is rewritten never sees a partial document
    seen: list[object] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(yaml.safe_load(target.read_text()))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(200):
        obj["metadata"]["annotations"]["meshwatch.io/expires"] = (
            f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}Z"
        )
        s.apply(obj)
    stop.set()
    reader.join()
    assert seen and all(isinstance(d, dict) and d["kind"] == "AuthorizationPolicy" for d in seen)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary left
    assert [o["metadata"]["name"] for o in s.list()] == ["meshwatch-deny-details"]
    assert s.delete("default", "meshwatch-deny-details") and not target.exists()


def test_directory_sink_leaves_foreign_and_broken_files_alone(tmp_path: Path) -> None:
    (tmp_path / "default.meshwatch-deny-details.yaml").write_text(
        "kind: AuthorizationPolicy\nmetadata: {name: x}\n"
    )
    (tmp_path / "broken.yaml").write_text("{not: [yaml")
    s = DirectoryPolicySink(tmp_path)
    assert s.list() == [] and s.unreadable == 1
    with pytest.raises(ForeignPolicyError):
        s.apply(desired())
    with pytest.raises(ForeignPolicyError):
        s.delete("default", "meshwatch-deny-details")
