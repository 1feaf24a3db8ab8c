"""Read (and later write) cluster objects through the official ``kubernetes`` client.

``ApiException`` never leaves this module: it becomes ``KubeError`` with the HTTP status,
so callers can tell "not installed" (404) from "not allowed" (403) from "broken" (5xx).
Least privilege: the audit only lists; Secrets are read only when asked, and only their
names are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from meshwatch.errors import MeshwatchError
from meshwatch.istio.meshconfig import mesh_config_resource
from meshwatch.istio.resources import Resource, from_object

# (kind, group, version, plural) of the Istio resources the audit reads; the first served
# version of each group wins.
ISTIO_RESOURCES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("AuthorizationPolicy", "security.istio.io", ("v1", "v1beta1"), "authorizationpolicies"),
    ("PeerAuthentication", "security.istio.io", ("v1", "v1beta1"), "peerauthentications"),
    ("RequestAuthentication", "security.istio.io", ("v1", "v1beta1"), "requestauthentications"),
    ("DestinationRule", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "destinationrules"),
    ("VirtualService", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "virtualservices"),
    ("Gateway", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "gateways"),
    ("ServiceEntry", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "serviceentries"),
    ("Sidecar", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "sidecars"),
    ("EnvoyFilter", "networking.istio.io", ("v1alpha3",), "envoyfilters"),
    ("Telemetry", "telemetry.istio.io", ("v1", "v1alpha1"), "telemetries"),
)
CORE_LISTS = (("Namespace", "list_namespace"), ("Service", "list_service_for_all_namespaces"))
APPS_LISTS = (
    ("Deployment", "list_deployment_for_all_namespaces"),
    ("StatefulSet", "list_stateful_set_for_all_namespaces"),
    ("DaemonSet", "list_daemon_set_for_all_namespaces"),
)
BATCH_LISTS = (
    ("Job", "list_job_for_all_namespaces"),
    ("CronJob", "list_cron_job_for_all_namespaces"),
)


AUTHZ_GROUP, AUTHZ_VERSION, AUTHZ_PLURAL = "security.istio.io", "v1", "authorizationpolicies"
REQUEST_TIMEOUT = (3.0, 10.0)  # connect, read: a hung API server must not hang a reconcile


class KubeError(MeshwatchError):
    """A Kubernetes API call failed."""

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class ClusterRead:
    resources: list[Resource] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def api_client(
    kubeconfig: str | None = None, context: str | None = None
) -> kubernetes.client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (file or $KUBECONFIG)."""
    try:
        if kubeconfig is None:
            try:
                kubernetes.config.load_incluster_config()
                return kubernetes.client.ApiClient()
            except kubernetes.config.ConfigException:
                pass
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        return kubernetes.client.ApiClient(configuration)
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise MeshwatchError(f"no usable Kubernetes configuration: {exc}") from exc
    except (yaml.YAMLError, TypeError, AttributeError, KeyError, ValueError) as exc:
        # a kubeconfig that is not YAML, or YAML of the wrong shape: the client's own
        # parser fails with whatever it trips on; say so in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeshwatchError(
            f"kubeconfig {kubeconfig} is not a usable kubeconfig: {first}"
        ) from exc


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise KubeError(int(exc.status or 0), str(exc.reason or ""), what) from exc
    except (OSError, urllib3.exceptions.HTTPError) as exc:  # unreachable, TLS, timeouts
        raise KubeError(0, f"cannot reach the API server ({type(exc).__name__})", what) from exc


_CERTIFICATE_KEYS = frozenset({"tls.crt", "cert"})
_PRIVATE_KEYS = frozenset({"tls.key", "key"})
_PRESENT = "cHJlc2VudA=="  # base64 of "present": a private key's stand-in


def _certificate_data(data: object) -> dict[str, str]:
    """A Secret's data with certificates kept, private keys replaced by a stand-in (or ""
    when empty), and every other value dropped (its key kept, empty)."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in _CERTIFICATE_KEYS:
            out[str(key)] = str(value or "")
        elif key in _PRIVATE_KEYS:
            out[str(key)] = _PRESENT if value else ""
        else:
            out[str(key)] = ""
    return out


def _raw_items(what: str, fn: Any, kind: str, api_version: str) -> list[dict[str, Any]]:
    """List as raw JSON (``_preload_content=False``): the audit wants the objects exactly as
    stored, unknown fields included, and must not fail on the client's own model validation."""
    response = _call(what, fn, _preload_content=False)
    try:
        document = json.loads(response.data)
    except ValueError as exc:
        raise KubeError(0, f"undecodable response: {exc}", what) from exc
    out = []
    for item in document.get("items") or []:
        if isinstance(item, dict):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            out.append(item)
    return out


def audit_input(
    kubeconfig: str | None, context: str | None, root_namespace: str, include_secrets: bool
) -> ClusterRead:
    """Connect, read what the audit needs, and close the connection."""
    api = api_client(kubeconfig, context)
    try:
        return read_cluster(api, root_namespace, include_secrets)
    finally:
        api.close()


def read_cluster(
    api: kubernetes.client.ApiClient,
    root_namespace: str = "istio-system",
    include_secrets: bool = False,
) -> ClusterRead:
    """Everything the audit reads, listed once; per-kind failures are recorded, not fatal."""
    out = ClusterRead()
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    batch = kubernetes.client.BatchV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)

    def add(objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            resource = from_object(obj, f"cluster:{obj.get('kind')}")
            if resource is not None:
                out.resources.append(resource)

    for group_api, lists, api_version in (
        (core, CORE_LISTS, "v1"),
        (apps, APPS_LISTS, "apps/v1"),
        (batch, BATCH_LISTS, "batch/v1"),
    ):
        for kind, method in lists:
            try:
                add(_raw_items(f"list {kind}", getattr(group_api, method), kind, api_version))
            except KubeError as exc:
                out.errors.append(str(exc))
    try:
        pods = _raw_items("list Pod", core.list_pod_for_all_namespaces, "Pod", "v1")
        add(pods)  # owned pods too: istioctl's analyzers read Pod objects (the snapshot keeps
        # only bare pods among workloads, so a Deployment's pods are not counted twice)
    except KubeError as exc:
        out.errors.append(str(exc))
    if include_secrets:
        try:
            secrets = _raw_items("list Secret", core.list_secret_for_all_namespaces, "Secret", "v1")
            # keep names, and of the data only the certificates: private keys are reduced to
            # "present or not" here and never reach the audit
            add(
                [
                    {
                        "kind": "Secret",
                        "apiVersion": "v1",
                        "metadata": {
                            "name": (s.get("metadata") or {}).get("name"),
                            "namespace": (s.get("metadata") or {}).get("namespace"),
                        },
                        "data": _certificate_data(s.get("data")),
                    }
                    for s in secrets
                ]
            )
        except KubeError as exc:
            out.errors.append(str(exc))
    _read_mesh_config(core, root_namespace, out)
    _read_injector_values(core, root_namespace, out)
    for kind, group, versions, plural in ISTIO_RESOURCES:
        _read_custom(custom, kind, group, versions, plural, out, add)
    return out


def _read_mesh_config(core: Any, root_namespace: str, out: ClusterRead) -> None:
    try:
        configmap = _call(
            "read ConfigMap istio", core.read_namespaced_config_map, "istio", root_namespace
        )
    except KubeError as exc:
        (out.skipped if exc.status == 404 else out.errors).append(str(exc))
        return
    obj = {
        "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": root_namespace},
        "data": configmap.data or {},
    }
    try:
        mesh = mesh_config_resource(obj, "cluster:ConfigMap", 0)
    except yaml.YAMLError as exc:
        out.errors.append(f"ConfigMap {root_namespace}/istio: invalid mesh config: {exc}")
        return
    if mesh is not None:
        out.resources.append(mesh)


def _read_injector_values(core: Any, root_namespace: str, out: ClusterRead) -> None:
    """The injector's ``values`` (whether namespaces are injected by default); nothing else
    of that ConfigMap (its templates are large) is kept."""
    name = "istio-sidecar-injector"
    try:
        configmap = _call(
            f"read ConfigMap {name}", core.read_namespaced_config_map, name, root_namespace
        )
    except KubeError as exc:
        (out.skipped if exc.status == 404 else out.errors).append(str(exc))
        return
    values = (configmap.data or {}).get("values", "")
    obj = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": root_namespace},
        "data": {"values": values},
    }
    resource = from_object(obj, "cluster:ConfigMap")
    if resource is not None:
        out.resources.append(resource)


def _read_custom(
    custom: Any,
    kind: str,
    group: str,
    versions: tuple[str, ...],
    plural: str,
    out: ClusterRead,
    add: Any,
) -> None:
    for version in versions:
        try:
            listing: Mapping[str, Any] = _call(
                f"list {kind} {group}/{version}",
                custom.list_cluster_custom_object,
                group,
                version,
                plural,
            )
        except KubeError as exc:
            if exc.status == 404:
                continue  # this version is not served; try the next
            out.errors.append(str(exc))
            return
        items = []
        for item in listing.get("items", []):
            item = dict(item)
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", f"{group}/{version}")
            items.append(item)
        add(items)
        return
    out.skipped.append(f"{kind}: no served version of {group} ({', '.join(versions)})")


# -- AuthorizationPolicy writes (runtime defence) -------------------------------------------


Timeout = tuple[float, float]
ApiClient = kubernetes.client.ApiClient


def list_policies(
    api: kubernetes.client.ApiClient, label_selector: str, timeout: Timeout = REQUEST_TIMEOUT
) -> list[dict[str, Any]]:
    """AuthorizationPolicies in every namespace carrying ``label_selector``."""
    custom = kubernetes.client.CustomObjectsApi(api)
    listing = _call(
        "list AuthorizationPolicy",
        custom.list_cluster_custom_object,
        AUTHZ_GROUP,
        AUTHZ_VERSION,
        AUTHZ_PLURAL,
        label_selector=label_selector,
        _request_timeout=timeout,
    )
    return [dict(item) for item in listing.get("items", []) if isinstance(item, Mapping)]


def _absent_on_404(what: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """(found, result) of a call where 404 means "not there", not an error."""
    try:
        return True, _call(what, fn, *args, **kwargs)
    except KubeError as exc:
        if exc.status == 404:
            return False, None
        raise


def _policy_item(
    api: kubernetes.client.ApiClient,
    verb: str,
    namespace: str,
    name: str,
    timeout: Timeout,
) -> tuple[bool, Any]:
    """get or delete one AuthorizationPolicy: (found, answer)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    return _absent_on_404(
        f"{verb} AuthorizationPolicy {namespace}/{name}",
        getattr(custom, f"{verb}_namespaced_custom_object"),
        AUTHZ_GROUP,
        AUTHZ_VERSION,
        namespace,
        AUTHZ_PLURAL,
        name,
        _request_timeout=timeout,
    )


def get_policy(
    api: kubernetes.client.ApiClient, namespace: str, name: str, timeout: Timeout = REQUEST_TIMEOUT
) -> dict[str, Any] | None:
    """The object, or ``None`` when there is none (404)."""
    found, obj = _policy_item(api, "get", namespace, name, timeout)
    return dict(obj) if found else None


def apply_policy(
    api: kubernetes.client.ApiClient,
    obj: Mapping[str, Any],
    field_manager: str,
    timeout: Timeout = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """Server-side apply as ``field_manager``, never forced: a field another manager owns
    is a 409 conflict, not an overwrite."""
    custom = kubernetes.client.CustomObjectsApi(api)
    meta = obj["metadata"]
    applied = _call(
        f"apply AuthorizationPolicy {meta['namespace']}/{meta['name']}",
        custom.patch_namespaced_custom_object,
        AUTHZ_GROUP,
        AUTHZ_VERSION,
        meta["namespace"],
        AUTHZ_PLURAL,
        meta["name"],
        dict(obj),
        field_manager=field_manager,
        force=False,
        _content_type="application/apply-patch+yaml",
        _request_timeout=timeout,
        _preload_content=False,  # the client's deserialiser returns None for apply patches
    )
    try:
        document = json.loads(applied.data)
    except ValueError as exc:
        raise KubeError(0, f"undecodable response: {exc}", "apply AuthorizationPolicy") from exc
    return dict(document) if isinstance(document, dict) else {}


def delete_policy(
    api: kubernetes.client.ApiClient, namespace: str, name: str, timeout: Timeout = REQUEST_TIMEOUT
) -> bool:
    """Delete; ``False`` when it was already gone (404)."""
    found, _ = _policy_item(api, "delete", namespace, name, timeout)
    return found
