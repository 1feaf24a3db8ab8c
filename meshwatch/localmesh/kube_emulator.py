"""An in-memory Kubernetes API server for tests and demos, spoken to over real HTTP.

No kube-apiserver can run here, so meshwatch's Kubernetes code is exercised against this
emulator through the official ``kubernetes`` client. It behaves as the API server does where
meshwatch depends on it: URL layout for core and named groups, namespaced and cluster-scoped
resources, list/get/create/replace/patch/delete, ``resourceVersion`` on every write and
optimistic-concurrency conflicts (409), ``AlreadyExists`` (409), ``NotFound`` (404) for unknown
objects *and* for versions a group does not serve, bearer-token authentication (401),
per-verb authorization (403), JSON merge patch, 415 for strategic merge patch on custom
resources, and server-side apply (``application/apply-patch+yaml`` with ``fieldManager``,
per-manager field ownership, 409 on conflicting owners unless ``force=true``). Errors are
``Status`` objects like the real ones.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

# (group, version, plural) → (kind, namespaced)
CORE = {
    "namespaces": ("Namespace", False),
    "services": ("Service", True),
    "pods": ("Pod", True),
    "configmaps": ("ConfigMap", True),
    "secrets": ("Secret", True),
    "serviceaccounts": ("ServiceAccount", True),
}
GROUPS: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {
    ("", "v1"): CORE,
    ("apps", "v1"): {
        "deployments": ("Deployment", True),
        "statefulsets": ("StatefulSet", True),
        "daemonsets": ("DaemonSet", True),
        "replicasets": ("ReplicaSet", True),
    },
    ("batch", "v1"): {"jobs": ("Job", True), "cronjobs": ("CronJob", True)},
}
_ISTIO = {
    "security.istio.io": {
        "authorizationpolicies": "AuthorizationPolicy",
        "peerauthentications": "PeerAuthentication",
        "requestauthentications": "RequestAuthentication",
    },
    "networking.istio.io": {
        "destinationrules": "DestinationRule",
        "virtualservices": "VirtualService",
        "gateways": "Gateway",
        "serviceentries": "ServiceEntry",
        "sidecars": "Sidecar",
        "envoyfilters": "EnvoyFilter",
        "workloadentries": "WorkloadEntry",
    },
    "telemetry.istio.io": {"telemetries": "Telemetry"},
}
_SERVED = {
    "security.istio.io": ("v1", "v1beta1"),
    "networking.istio.io": ("v1", "v1beta1", "v1alpha3"),
    "telemetry.istio.io": ("v1", "v1alpha1"),
}
for _group, _plurals in _ISTIO.items():
    for _version in _SERVED[_group]:
        GROUPS[(_group, _version)] = {p: (k, True) for p, k in _plurals.items()}
BUILTIN_GROUPS = frozenset({"", "apps", "batch"})


def _status(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
        "details": dict(details or {}),
    }
    return web.json_response(body, status=code)


def _leaves(obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Field paths (leaf values) of an object, for server-side-apply ownership."""
    if isinstance(obj, Mapping) and obj:
        for key, value in obj.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, obj


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


@dataclass
class Fault:
    """Make the next ``times`` requests of ``verb`` on ``plural`` fail with ``status``
    (0: answer normally) after ``delay`` seconds (a slow or hung API server)."""

    verb: str  # get, list, create, update, patch, delete, or "*"
    plural: str
    status: int = 500
    times: int = 1
    delay: float = 0.0


@dataclass
class KubeEmulator:
    """The emulated API server's state. ``app()`` serves it."""

    token: str = "test-token"  # noqa: S105 (the emulator's own throwaway credential)
    forbidden: set[tuple[str, str]] = field(default_factory=set)  # (verb, plural), verb "*" for all
    unserved: set[tuple[str, str]] = field(
        default_factory=set
    )  # (group, version) to pretend absent
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str, str, str], dict[tuple[str, ...], str]] = field(
        default_factory=dict
    )
    revision: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    # -- state helpers usable directly by tests ------------------------------------------

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if created (no auth); returns it with server fields set."""
        group, _, _version = str(obj.get("apiVersion", "v1")).rpartition("/")
        plural = self._plural(group, str(obj["kind"]))
        meta = obj.get("metadata") or {}
        namespaced = self._namespaced(group, plural)
        key = (
            group,
            plural,
            str(meta.get("namespace", "default")) if namespaced else "",
            str(meta["name"]),
        )
        stored = self._stamp(copy.deepcopy(dict(obj)), existing=self.objects.get(key))
        self.objects[key] = stored
        return stored

    def _plural(self, group: str, kind: str) -> str:
        for (g, _), plurals in GROUPS.items():
            if g == group:
                for plural, (k, _) in plurals.items():
                    if k == kind:
                        return plural
        raise KeyError(f"unknown kind {group}/{kind}")

    def _namespaced(self, group: str, plural: str) -> bool:
        for (g, _), plurals in GROUPS.items():
            if g == group and plural in plurals:
                return plurals[plural][1]
        return True

    def _stamp(self, obj: dict[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
        self.revision += 1
        meta = obj.setdefault("metadata", {})
        old = (existing or {}).get("metadata", {})
        meta["resourceVersion"] = str(self.revision)
        meta["uid"] = old.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = old.get("creationTimestamp") or datetime.now(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        meta["generation"] = int(old.get("generation", 0)) + 1
        return obj

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=8 << 20)
        app.router.add_get("/version", self._version)
        for prefix in ("/api/{version}", "/apis/{group}/{version}"):
            app.router.add_route("*", prefix + "/{plural}", self._collection)
            app.router.add_route("*", prefix + "/{plural}/{name}", self._item)
            app.router.add_route("*", prefix + "/namespaces/{namespace}/{plural}", self._collection)
            app.router.add_route(
                "*", prefix + "/namespaces/{namespace}/{plural}/{name}", self._item
            )
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        fault = self._fault(request)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                reasons = {429: "TooManyRequests", 409: "Conflict", 503: "ServiceUnavailable"}
                return _status(
                    fault.status,
                    reasons.get(fault.status, "InternalError"),
                    f"injected fault: HTTP {fault.status}",
                )
        response: web.StreamResponse = await handler(request)
        return response

    def _fault(self, request: web.Request) -> Fault | None:
        info = request.match_info
        verb = {
            "GET": "get" if "name" in info else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(request.method, "")
        for fault in self.faults:
            if fault.times > 0 and fault.verb in ("*", verb) and fault.plural == info.get("plural"):
                fault.times -= 1
                return fault
        return None

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"major": "1", "minor": "31", "gitVersion": "v1.31.0-meshwatch-emulator"}
        )

    def _route(self, request: web.Request) -> tuple[str, str, str, str, str] | web.Response:
        info = request.match_info
        group, version, plural = info.get("group", ""), info["version"], info["plural"]
        resources = GROUPS.get((group, version))
        if resources is None or plural not in resources or (group, version) in self.unserved:
            return _status(404, "NotFound", "the server could not find the requested resource")
        verb = {
            "GET": "get",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(request.method, "")
        if "name" not in info and verb == "get":
            verb = "list"
        self.requests.append((verb, plural))
        if (verb, plural) in self.forbidden or ("*", plural) in self.forbidden:
            scope = (
                f' in the namespace "{info["namespace"]}"'
                if "namespace" in info
                else " at the cluster scope"
            )
            return _status(
                403,
                "Forbidden",
                f'{plural}{"." + group if group else ""} is forbidden: User "meshwatch" cannot {verb} resource "{plural}"{scope}',
                {"kind": plural, "group": group},
            )
        return group, version, plural, info.get("namespace", ""), info.get("name", "")

    def _api_version(self, group: str, version: str) -> str:
        return f"{group}/{version}" if group else version

    def _present(self, obj: Mapping[str, Any], group: str, version: str) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        out["apiVersion"] = self._api_version(group, version)
        return out

    async def _collection(self, request: web.Request) -> web.Response:
        routed = self._route(request)
        if isinstance(routed, web.Response):
            return routed
        group, version, plural, namespace, _ = routed
        kind = GROUPS[(group, version)][plural][0]
        if request.method == "GET":
            selector = dict(
                p.split("=", 1)
                for p in request.query.get("labelSelector", "").split(",")
                if "=" in p
            )
            items = [
                self._present(o, group, version)
                for (g, p, ns, _), o in sorted(self.objects.items())
                if g == group
                and p == plural
                and (not namespace or ns == namespace)
                and all(
                    (o.get("metadata", {}).get("labels") or {}).get(k) == v
                    for k, v in selector.items()
                )
            ]
            return web.json_response(
                {
                    "kind": f"{kind}List",
                    "apiVersion": self._api_version(group, version),
                    "metadata": {"resourceVersion": str(self.revision)},
                    "items": items,
                }
            )
        if request.method == "POST":
            body = await self._body(request)
            if isinstance(body, web.Response):
                return body
            name = str((body.get("metadata") or {}).get("name", ""))
            if not name:
                return _status(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
            return self._create(group, version, plural, namespace, name, body, kind)
        return _status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    def _create(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        kind: str,
    ) -> web.Response:
        key = (group, plural, namespace, name)
        if key in self.objects:
            return _status(
                409,
                "AlreadyExists",
                f'{plural} "{name}" already exists',
                {"name": name, "kind": plural},
            )
        body.setdefault("metadata", {})
        if namespace:
            body["metadata"]["namespace"] = namespace
        body["kind"] = kind
        stored = self._stamp(body, None)
        self.objects[key] = stored
        return web.json_response(self._present(stored, group, version), status=201)

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            text = await request.text()
            data = (
                yaml.safe_load(text) if "yaml" in request.content_type else json.loads(text or "{}")
            )
        except (ValueError, yaml.YAMLError) as exc:
            return _status(400, "BadRequest", f"the request body could not be decoded: {exc}")
        if not isinstance(data, dict):
            return _status(400, "BadRequest", "the request body must be an object")
        return data

    async def _item(self, request: web.Request) -> web.Response:
        routed = self._route(request)
        if isinstance(routed, web.Response):
            return routed
        group, version, plural, namespace, name = routed
        kind = GROUPS[(group, version)][plural][0]
        key = (group, plural, namespace, name)
        current = self.objects.get(key)
        not_found = _status(
            404,
            "NotFound",
            f'{plural}{"." + group if group else ""} "{name}" not found',
            {"name": name, "kind": plural},
        )
        if request.method == "GET":
            return (
                web.json_response(self._present(current, group, version)) if current else not_found
            )
        if request.method == "DELETE":
            if current is None:
                return not_found
            del self.objects[key]
            self.owners.pop(key, None)
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Success",
                    "details": {"name": name},
                }
            )
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if request.method == "PUT":
            if current is None:
                return not_found
            sent = str((body.get("metadata") or {}).get("resourceVersion", ""))
            if sent and sent != current["metadata"]["resourceVersion"]:
                return _stale(plural, name)
            body["kind"] = kind
            body.setdefault("metadata", {})["namespace"] = namespace or None
            if not namespace:
                body["metadata"].pop("namespace")
            stored = self._stamp(body, current)
            self.objects[key] = stored
            return web.json_response(self._present(stored, group, version))
        if request.method == "PATCH":
            return self._patch(
                request, group, version, plural, namespace, name, kind, body, current
            )
        return _status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    def _patch(
        self,
        request: web.Request,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        kind: str,
        body: dict[str, Any],
        current: dict[str, Any] | None,
    ) -> web.Response:
        key = (group, plural, namespace, name)
        content_type = request.content_type
        if content_type == "application/apply-patch+yaml":
            manager = request.query.get("fieldManager", "")
            if not manager:
                return _status(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: is required for apply patch",
                )
            force = request.query.get("force", "false") == "true"
            owners = self.owners.setdefault(key, {})
            old_leaves = dict(_leaves(current)) if current else {}
            conflicts = [
                path
                for path, value in _leaves(body)
                if path[0] not in ("apiVersion", "kind")
                and path[:2] != ("metadata", "name")
                and owners.get(path, manager) != manager
                and old_leaves.get(path) != value
            ]
            if conflicts and not force:
                shown = [".".join(c) for c in conflicts]
                return _status(
                    409,
                    "Conflict",
                    f"Apply failed with {len(conflicts)} conflict(s): "
                    + "; ".join(
                        f'conflict with "{owners[c]}": .{text}'
                        for c, text in zip(conflicts, shown, strict=True)
                    ),
                    {
                        "causes": [
                            {"reason": "FieldManagerConflict", "field": f".{t}"} for t in shown
                        ]
                    },
                )
            # fields this manager owned before but no longer applies are removed
            mine_now = {path for path, _ in _leaves(body)}
            merged = current or {}
            for path, owner in list(owners.items()):
                if owner == manager and path not in mine_now:
                    merged = _merge(merged, _nested(path, None))
                    del owners[path]
            merged = _merge(merged, body)
            for path in mine_now:
                owners[path] = manager
            merged["kind"] = kind
            merged.setdefault("metadata", {})["name"] = name
            if namespace:
                merged["metadata"]["namespace"] = namespace
            stored = self._stamp(merged, current)
            self.objects[key] = stored
            return web.json_response(
                self._present(stored, group, version), status=200 if current else 201
            )
        if current is None:
            return _status(
                404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural}
            )
        if content_type == "application/strategic-merge-patch+json" and group not in BUILTIN_GROUPS:
            return _status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        if content_type not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            return _status(415, "UnsupportedMediaType", f"unsupported patch type {content_type}")
        sent = str((body.get("metadata") or {}).get("resourceVersion", ""))
        if sent and sent != current["metadata"]["resourceVersion"]:
            return _stale(plural, name)
        stored = self._stamp(_merge(current, body), current)
        self.objects[key] = stored
        return web.json_response(self._present(stored, group, version))


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    result: dict[str, Any] = out
    return result


def _stale(plural: str, name: str) -> web.Response:
    return _status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


def kubeconfig(server: str, token: str) -> str:
    """A kubeconfig document pointing the official client at the emulator."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": server}}],
            "users": [{"name": "meshwatch", "user": {"token": token}}],
            "contexts": [
                {"name": "emulator", "context": {"cluster": "emulator", "user": "meshwatch"}}
            ],
        }
    )


class EmulatorThread:
    """The emulator on loopback in a thread of its own, so blocking clients (the official
    ``kubernetes`` client, a CLI in the same process) can talk to it from any thread.
    Objects are read and changed through ``emulator`` only while holding ``lock`` or from
    the emulator's loop."""

    def __init__(self, emulator: KubeEmulator | None = None) -> None:
        self.emulator = emulator or KubeEmulator()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        if self._runner is not None:
            self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.emulator.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def start(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes API emulator did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def kubeconfig(self) -> str:
        return kubeconfig(self.url, self.emulator.token)

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file pointing the official client at this emulator."""
        path.write_text(self.kubeconfig())
        return path

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
