"""Live-cluster audit through the official kubernetes client, over real HTTP, against the
Kubernetes API emulator (no kube-apiserver can run here)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from meshwatch.adapters.files.manifests import load
from meshwatch.compliance.auditing import audit
from meshwatch.istio.snapshot import Snapshot
from meshwatch.localmesh.kube_emulator import KubeEmulator, kubeconfig
from tests.compliance.grid import FIXTURES

CLUSTER_FIXTURES = [
    FIXTURES / "default-deny" / "positive.yaml",
    FIXTURES / "mtls-downgrade" / "positive.yaml",
    FIXTURES / "gateway-tls" / "positive.yaml",
    FIXTURES / "workload-injection-opt-out" / "positive.yaml",
    FIXTURES / "meshwatch-als-wiring" / "positive.yaml",
    FIXTURES / "http-only-deny-on-tcp" / "positive.yaml",
]


class Cluster:
    def __init__(self, emulator: KubeEmulator, server: str, config: Path) -> None:
        self.emulator = emulator
        self.server = server
        self.kubeconfig = config

    def client(self, token: str | None = None) -> kubernetes.client.ApiClient:
        configuration = kubernetes.client.Configuration()
        configuration.host = self.server
        configuration.api_key = {"authorization": f"Bearer {token or self.emulator.token}"}
        return kubernetes.client.ApiClient(configuration)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    emulator = KubeEmulator()
    runner = web.AppRunner(emulator.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(server, emulator.token))
    try:
        yield Cluster(emulator, server, config)
    finally:
        await runner.cleanup()


async def _audit_cli(cluster: Cluster, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshwatch",
        "audit",
        "--cluster",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--format",
        "json",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert out, err.decode()[-3000:]
    return proc.returncode, json.loads(out or b"{}")


def _load_into(cluster: Cluster, files: list[Path]) -> set[tuple[str, str]]:
    loaded = load([str(f) for f in files])
    for resource in loaded.resources:
        if resource.kind != "MeshConfig":
            cluster.emulator.put(resource.body)
    offline = audit(Snapshot.build(loaded.resources, time.time()))
    return {(f.code, f.ref) for f in offline.findings}


async def test_live_audit_finds_what_the_offline_audit_finds(cluster: Cluster) -> None:
    expected = await asyncio.to_thread(_load_into, cluster, CLUSTER_FIXTURES)
    code, doc = await _audit_cli(cluster)
    assert doc["errors"] == []
    assert code == 1
    found = {(f["code"], f["resource"]) for f in doc["findings"]}
    assert found == expected
    assert ("MW0503", "Gateway istio-system/broken") in found
    assert (
        "MW0803",
        "MeshConfig istio-system/mesh",
    ) in found  # mesh config read from the ConfigMap
    located = {f["resource"]: f["file"] for f in doc["findings"]}
    assert located["Gateway istio-system/broken"] == "cluster:Gateway"
    assert located["Deployment shop/batch"] == "cluster:Deployment"
    verbs = {verb for verb, _ in cluster.emulator.requests}
    assert verbs <= {"list", "get"}, "the audit only reads"
    assert ("list", "secrets") not in cluster.emulator.requests, "secrets are not read unless asked"


async def test_forbidden_kinds_are_reported_and_the_rest_is_still_audited(cluster: Cluster) -> None:
    await asyncio.to_thread(_load_into, cluster, CLUSTER_FIXTURES)
    cluster.emulator.forbidden.add(("list", "authorizationpolicies"))
    code, doc = await _audit_cli(cluster)
    assert code == 2
    assert any("403" in e and "AuthorizationPolicy" in e for e in doc["errors"])
    assert any(f["code"] == "MW0503" for f in doc["findings"])


async def test_falls_back_to_an_older_served_version(cluster: Cluster) -> None:
    await asyncio.to_thread(_load_into, cluster, [FIXTURES / "allow-all-rule" / "positive.yaml"])
    cluster.emulator.unserved.add(("security.istio.io", "v1"))
    code, doc = await _audit_cli(cluster)
    codes = {f["code"] for f in doc["findings"]}
    assert "MW0203" in codes
    assert "MW0901" in codes  # served only as v1beta1: deprecated API
    assert code == 1


async def test_unreachable_cluster_is_an_input_error(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig("http://127.0.0.1:9", "x"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshwatch",
        "audit",
        "--cluster",
        "--kubeconfig",
        str(config),
        "--format",
        "json",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 2
    assert json.loads(out)["errors"]


def _emulator_semantics(cluster: Cluster) -> None:
    core = kubernetes.client.CoreV1Api(cluster.client())
    custom = kubernetes.client.CustomObjectsApi(cluster.client())
    ns = core.create_namespace({"metadata": {"name": "shop"}})
    assert ns.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        core.create_namespace({"metadata": {"name": "shop"}})
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    cm = core.create_namespaced_config_map("shop", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    stale = cm.metadata.resource_version
    core.replace_namespaced_config_map(
        "c", "shop", {"metadata": {"name": "c", "resourceVersion": stale}, "data": {"a": "2"}}
    )
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map(
            "c", "shop", {"metadata": {"name": "c", "resourceVersion": stale}, "data": {"a": "3"}}
        )
    assert conflict.value.status == 409

    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "shop")
    assert missing.value.status == 404

    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"action": "DENY", "rules": [{}]},
    }
    created = custom.create_namespaced_custom_object(
        "security.istio.io", "v1", "shop", "authorizationpolicies", policy
    )
    assert created["metadata"]["resourceVersion"]
    patched = custom.patch_namespaced_custom_object(
        "security.istio.io",
        "v1",
        "shop",
        "authorizationpolicies",
        "deny",
        {"metadata": {"labels": {"a": "b"}}},
    )  # the client sends a JSON merge patch to custom resources
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert patched["spec"]["action"] == "DENY"
    status, _ = raw(
        cluster.client(),
        "PATCH",
        "/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/deny",
        {"metadata": {"labels": {"c": "d"}}},
        "application/strategic-merge-patch+json",
    )
    assert status == 415  # as for every custom resource on a real API server

    with pytest.raises(ApiException) as unauthenticated:
        kubernetes.client.CoreV1Api(cluster.client("wrong")).list_namespace()
    assert unauthenticated.value.status == 401


def raw(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    body: Any,
    content_type: str,
    query: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    """A request through the official client's serializer and transport, any content type."""
    m, url, headers, payload, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        body=body,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(m, url, headers, payload)
    response.read()
    return response.status, json.loads(response.data)


def _server_side_apply(cluster: Cluster) -> None:
    api = cluster.client()
    path = "/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/mw-deny"
    body = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "mw-deny", "namespace": "shop"},
        "spec": {"action": "DENY"},
    }

    def apply(manager: str, doc: dict[str, Any], force: bool = False) -> tuple[int, Any]:
        query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
        return raw(api, "PATCH", path, doc, "application/apply-patch+yaml", query)

    status, first = apply("meshwatch", body)
    assert status == 201
    assert first["spec"]["action"] == "DENY"
    status, conflict = apply("someone-else", {**body, "spec": {"action": "ALLOW"}})
    assert status == 409
    assert conflict["reason"] == "Conflict"
    assert 'conflict with "meshwatch"' in conflict["message"]
    status, again = apply("meshwatch", body)  # re-applying one's own fields is not a conflict
    assert status == 200
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    status, forced = apply("someone-else", {**body, "spec": {"action": "ALLOW"}}, force=True)
    assert status == 200
    assert forced["spec"]["action"] == "ALLOW"
    assert int(forced["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


async def test_emulator_speaks_like_an_api_server(cluster: Cluster) -> None:
    await asyncio.to_thread(_emulator_semantics, cluster)
    await asyncio.to_thread(_server_side_apply, cluster)
