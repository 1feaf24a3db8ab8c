"""Runtime defence in a running meshwatch: a novel edge becomes an AuthorizationPolicy in the
(emulated) Kubernetes API through the official client, visible in the API, the graph and the
metrics; it survives a restart without duplicates; approve lifts it; the CLI's emergency
brake works with meshwatch down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshwatch.adapters.files.models import save_bundle
from meshwatch.calls import WindowSpec
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.localmesh.kube_emulator import EmulatorThread
from meshwatch.monitor.replaying import Replayer, replay_monitor
from tests.commands import meshwatch_cli
from tests.conftest import Running, eventually
from tests.factories import make_call
from tests.monitor.test_engine import T0, traffic, wl

POLICY = ("security.istio.io", "authorizationpolicies", "shop", "meshwatch-deny-cart")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    monitor = replay_monitor(
        DetectionParams(window=WindowSpec(60), learn_for=3 * 3600), Mode.OBSERVE
    )
    Replayer(monitor).feed(traffic(T0, 3 * 3600 + 120))
    assert monitor.engine.bundle is not None
    path = tmp_path_factory.mktemp("model") / "shop.skops"
    save_bundle(monitor.engine.bundle, path)
    return path


async def _post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
        return r.status, await r.json()


async def _attack(mw: Running) -> float:
    """The intruder calls cart, which it never did while learning."""
    await asyncio.wait_for(mw.service.defending.started.wait(), 10)
    now = time.time()
    events = mw.service.monitor.ingest(
        [make_call(now, wl("intruder"), wl("cart"), port=8080, path="/cart/1")]
    )
    mw.service.monitoring.publish(events)
    return now


async def test_novel_edge_to_policy_in_the_api_server_and_back(
    meshwatch: Any, model: Path, tmp_path: Path
) -> None:
    with EmulatorThread() as cluster:
        config = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        settings = {
            "mode": "observe",
            "model": model,
            "defence": "enforce",
            "policy_kube": True,
            "kubeconfig": config,
        }
        mw: Running = await meshwatch(**settings)
        started = await _attack(mw)
        await eventually(lambda: POLICY in cluster.emulator.objects, timeout=5, interval=0.02)
        latency = time.time() - started
        assert latency < 1.0, f"anomaly to accepted policy took {latency:.2f}s"
        stored = cluster.emulator.objects[POLICY]
        assert stored["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
            "cluster.local/ns/shop/sa/intruder"
        ]
        assert "istio.io/dry-run" not in stored["metadata"]["annotations"]  # enforce, no collateral

        doc = await mw.get_json("/api/v1/policies")
        [policy] = doc["policies"]
        assert (policy["state"], policy["mode"]) == ("enforced", "enforce")
        assert policy["simulation"]["denied"] == 0 and policy["simulation"]["checked"] > 0
        assert policy["edges"] == [{"source": "shop/intruder", "target": "shop/cart", "port": 8080}]
        graph = await mw.get_json("/api/v1/graph")
        [edge] = [e for e in graph["edges"] if e["source"] == "shop/intruder"]
        assert edge["policy"] == {
            "name": "meshwatch-deny-cart",
            "namespace": "shop",
            "state": "enforced",
        }
        async with aiohttp.ClientSession() as s, s.get(mw.http + "/metrics") as r:
            metrics = await r.text()
        assert 'meshwatch_policies{mode="enforce",state="enforced"} 1.0' in metrics
        assert 'meshwatch_policy_actions_total{action="create"} 1.0' in metrics

        # restart: the managed policy is adopted, not duplicated or dropped
        await mw.stop()
        writes = sum(1 for verb, plural in cluster.emulator.requests if verb == "patch")
        again: Running = await meshwatch(**settings)
        await asyncio.sleep(1.5)  # a reconcile or two
        assert POLICY in cluster.emulator.objects
        assert sum(1 for verb, _ in cluster.emulator.requests if verb == "patch") == writes
        doc = await again.get_json("/api/v1/policies")
        assert [p["name"] for p in doc["policies"]] == ["meshwatch-deny-cart"]

        # approve: the deny is lifted within one reconcile
        status, approved = await _post(
            again.http + "/api/v1/baseline/approve",
            {"source": "shop/intruder", "target": "shop/cart"},
        )
        assert status == 200, approved
        assert POLICY not in cluster.emulator.objects
        assert (await again.get_json("/api/v1/policies"))["policies"] == []
        # and the edge no longer raises anything
        await _attack(again)
        await asyncio.sleep(1.2)
        assert POLICY not in cluster.emulator.objects


async def test_dry_run_is_the_default_and_revoke_all_works_with_meshwatch_down(
    meshwatch: Any, model: Path, tmp_path: Path
) -> None:
    with EmulatorThread() as cluster:
        config = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        mw: Running = await meshwatch(
            mode="observe", model=model, policy_kube=True, kubeconfig=config
        )
        await _attack(mw)
        await eventually(lambda: POLICY in cluster.emulator.objects, timeout=5)
        assert (
            cluster.emulator.objects[POLICY]["metadata"]["annotations"]["istio.io/dry-run"]
            == "true"
        )
        await mw.stop()
        cluster.emulator.put(  # a policy of someone else's, which the brake must not touch
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "team-allow", "namespace": "shop"},
                "spec": {"action": "ALLOW", "rules": [{}]},
            }
        )
        listed = await asyncio.to_thread(
            meshwatch_cli, "policies", "list", "--kube", "--kubeconfig", str(config)
        )
        assert listed.returncode == 0, listed.stderr
        assert "shop/meshwatch-deny-cart  dry-run" in listed.stdout
        revoked = await asyncio.to_thread(
            meshwatch_cli, "policies", "revoke", "--all", "--kube", "--kubeconfig", str(config)
        )
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked 1 managed policies" in revoked.stdout
        assert POLICY not in cluster.emulator.objects
        assert (
            "security.istio.io",
            "authorizationpolicies",
            "shop",
            "team-allow",
        ) in cluster.emulator.objects


async def test_policy_directory_and_cli_simulate(
    meshwatch: Any, model: Path, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    mw: Running = await meshwatch(
        mode="observe", model=model, policy_dir=policies, defence="enforce"
    )
    await _attack(mw)
    target = policies / "shop.meshwatch-deny-cart.yaml"
    await eventually(target.exists, timeout=5)
    await mw.stop()
    simulated = await asyncio.to_thread(
        meshwatch_cli, "policies", "simulate", "--model", str(model), "--policy-dir", str(policies)
    )
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    assert "no normal call denied" in simulated.stdout
    # a hand-written deny of a learned caller is caught as collateral (exit 1)
    harmful = target.read_text().replace("sa/intruder", "sa/web")
    target.write_text(harmful)
    simulated = await asyncio.to_thread(
        meshwatch_cli, "policies", "simulate", "--model", str(model), "--policy-dir", str(policies)
    )
    assert simulated.returncode == 1
    assert "shop/web -> shop/cart:8080 GET /cart/" in simulated.stdout
