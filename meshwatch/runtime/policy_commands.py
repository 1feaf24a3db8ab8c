"""``meshwatch policies`` and ``meshwatch baseline approve``: operators and defence.

``list``, ``explain`` and ``revoke`` talk to a running meshwatch's API by default. Given a
sink (``--policy-dir`` or ``--kube``) they go straight to it instead: that is the emergency
brake that works when meshwatch is down. (With meshwatch up, revoke through the API: a policy
removed behind its back is put back at the next resync while its anomaly is open.)
``simulate`` replays a model's learned baseline through the managed policies and exits 1 if
any normal call would be denied: a CI gate for a GitOps policy directory.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshwatch.errors import MeshwatchError
from meshwatch.policy.collateral import collateral, normal_traffic
from meshwatch.policy.objects import ANOMALIES, ObservedPolicy
from meshwatch.policy.params import DefenceParams, EgressGateway
from meshwatch.runtime.defending import PolicySink

Say = Callable[[str], None]
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Target:
    """Where the command acts: the API of a running meshwatch, or a sink directly."""

    url: str = "http://127.0.0.1:9902"
    token: str = ""
    policy_dir: Path | None = None
    kube: bool = False
    kubeconfig: str | None = None
    direct_hint: bool = True
    """Say, when the API is unreachable, that a sink can be acted on directly."""

    @property
    def direct(self) -> bool:
        return self.kube or self.policy_dir is not None

    def sink(self) -> PolicySink:
        if self.kube:
            from meshwatch.adapters.kube.client import api_client
            from meshwatch.adapters.kube.policy_sink import KubePolicySink

            return KubePolicySink(api_client(self.kubeconfig))
        if self.policy_dir is not None:
            from meshwatch.adapters.files.policy_dir import DirectoryPolicySink

            return DirectoryPolicySink(self.policy_dir)
        raise MeshwatchError("no sink given (--policy-dir or --kube)")


def call_api(
    target: Target, method: str, path: str, body: Any = None, what: str = "", timeout: float = 30
) -> Any:
    """JSON from the API (``MeshwatchError`` with the server's reason on failure)."""
    if not target.url.startswith(("http://", "https://")):
        raise MeshwatchError(f"--url must be http(s), got {target.url!r}")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        target.url.rstrip("/") + path, method=method, data=data
    )
    request.add_header("Content-Type", "application/json")
    if target.token:
        request.add_header("Authorization", f"Bearer {target.token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the user's own API)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise MeshwatchError(
            f"{what or method + ' ' + path} refused ({exc.code}): {detail}"
        ) from exc
    except urllib.error.URLError as exc:
        hint = (
            " (to act on the sink directly, give --policy-dir or --kube)"
            if target.direct_hint
            else ""
        )
        raise MeshwatchError(f"cannot reach meshwatch at {target.url}: {exc.reason}{hint}") from exc


def _observed(sink: PolicySink) -> list[ObservedPolicy]:
    return [ObservedPolicy.of(o) for o in sink.list()]


def _anomalies(policy: ObservedPolicy) -> list[Mapping[str, Any]]:
    try:
        entries = json.loads(policy.annotations.get(ANOMALIES, "[]"))
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []


def list_policies(target: Target, say: Say) -> int:
    if target.direct:
        sink = target.sink()
        try:
            found = _observed(sink)
        finally:
            sink.close()
        say(f"{len(found)} managed policies in the {sink.name} sink")
        for p in found:
            state = "dry-run" if p.dry_run else "enforced"
            expires = p.annotations.get("meshwatch.io/expires", "?")
            edges = ", ".join(str(e.get("edge", "")).replace("|", " -> ", 1) for e in _anomalies(p))
            say(f"  {p.namespace}/{p.name}  {state}  expires {expires}  {edges}")
        return EXIT_OK
    doc = call_api(target, "GET", "/api/v1/policies")
    say(f"defence {doc['mode']}, sink {doc.get('sink') or 'none'}: {len(doc['policies'])} policies")
    for p in doc["policies"]:
        edges = ", ".join(f"{e['source']} -> {e['target']}:{e['port']}" for e in p["edges"])
        say(f"  {p['namespace']}/{p['name']}  {p['state']}  expires {p['expires']}  {edges}")
        say(f"      {p['reason']}")
    for r in doc["refused"]:
        say(
            f"  refused {r['source']} -> {r['target']}:{r['port']} ({r['threat']}): {r['reason']}: {r['detail']}"
        )
    return EXIT_OK


def explain_policy(target: Target, name: str, say: Say) -> int:
    if target.direct:
        sink = target.sink()
        try:
            found = [p for p in _observed(sink) if p.name == name]
        finally:
            sink.close()
        if not found:
            raise MeshwatchError(f"no managed policy named {name!r} in the {sink.name} sink")
        for p in found:
            say(f"{p.namespace}/{p.name}: {'dry-run' if p.dry_run else 'enforced'}")
            for entry in _anomalies(p):
                say(
                    f"  answers {entry.get('threat')} on {entry.get('edge')}: {entry.get('reason')}"
                )
            say(yaml.safe_dump(p.as_object(), sort_keys=False).rstrip())
        return EXIT_OK
    doc = call_api(target, "GET", f"/api/v1/policies/{name}")
    for p in doc["policies"]:
        say(
            f"{p['namespace']}/{p['name']}: {p['state']} ({p['mode']} mode), expires {p['expires']}"
        )
        say(f"  why this state: {p['reason']}")
        say(f"  anomalies: {', '.join(p['anomaly_ids'])}")
        say(f"  collateral simulation: {p['simulation']['summary']}")
        say(yaml.safe_dump(p["object"], sort_keys=False).rstrip())
    for r in doc["refused"]:
        say(f"refused {r['source']} -> {r['target']}: {r['reason']}: {r['detail']}")
    return EXIT_OK


def revoke_policies(target: Target, name: str | None, say: Say) -> int:
    if not target.direct:
        body = {"all": True} if name is None else {"name": name}
        doc = call_api(target, "POST", "/api/v1/policies/revoke", body)
        say(f"revoked {len(doc['revoked'])}: {', '.join(doc['revoked']) or 'none'}")
        return EXIT_OK
    sink = target.sink()
    try:
        chosen = [p for p in _observed(sink) if name is None or p.name == name]
        if name is not None and not chosen:
            raise MeshwatchError(f"no managed policy named {name!r} in the {sink.name} sink")
        for p in chosen:
            sink.delete(p.namespace, p.name)
            say(f"removed {p.namespace}/{p.name} from the {sink.name} sink")
    finally:
        sink.close()
    say(f"revoked {len(chosen)} managed policies")
    return EXIT_OK


def simulate_policies(
    target: Target, model: Path, window: float | None, egress_gateway: str, say: Say
) -> int:
    from meshwatch.adapters.files.models import load_bundle

    bundle = load_bundle(model, window)
    baseline = bundle.baseline
    if target.direct:
        sink = target.sink()
        try:
            objects = [p.as_object() for p in _observed(sink)]
        finally:
            sink.close()
    else:
        objects = [p["object"] for p in call_api(target, "GET", "/api/v1/policies")["policies"]]
    params = DefenceParams(
        egress_gateway=EgressGateway.parse(egress_gateway) if egress_gateway else None
    )
    traffic = normal_traffic(baseline, baseline.actors.get, (), params)
    say(
        f"{len(objects)} policies against {len(baseline.known_edges)} learned edges "
        f"({traffic.count} normal calls)"
    )
    harmful = 0
    for obj in objects:
        meta = obj.get("metadata") or {}
        destination = f"{meta.get('namespace')}/{meta.get('name')}"
        result = collateral(obj, destination, traffic, [], params.root_namespace)
        harmful += result.denied
        say(f"  {destination}: {result.summary()}")
    say("no normal call denied" if harmful == 0 else f"{harmful} normal calls would be denied")
    return EXIT_OK if harmful == 0 else EXIT_FAILURE


def approve_edge(target: Target, source: str, destination: str, port: int | None, say: Say) -> int:
    body: dict[str, Any] = {"source": source, "target": destination}
    if port is not None:
        body["port"] = port
    doc = call_api(target, "POST", "/api/v1/baseline/approve", body)
    say(
        f"approved {source} -> {destination}"
        + (f":{port}" if port is not None else "")
        + f": {len(doc.get('anomalies_ended', []))} anomalies ended, "
        + f"{len(doc.get('edges_lifted', []))} denies lifted"
    )
    return EXIT_OK
