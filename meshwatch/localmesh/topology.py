"""What runs in a local mesh: workloads, the services in front of them, and external hosts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """One workload (a Deployment in Kubernetes terms) with its sidecar.

    ``calls`` are the service hosts (``name`` / ``name.ns`` / external host) the app calls for
    every request it serves, which is how the demo's traffic fans out like Bookinfo's.
    """

    name: str
    app: str
    version: str = "v1"
    namespace: str = "default"
    service_account: str = ""
    port: int = 9080
    protocol: str = "http"  # "http" or "tcp"
    serves: bool = True  # False for pure clients (an ingress gateway, a load generator)
    calls: tuple[str, ...] = ()

    @property
    def sa(self) -> str:
        """The service account, defaulting to the app name."""
        return self.service_account or self.app

    @property
    def pod(self) -> str:
        """A pod-like name (rollouts change it; meshwatch must not care)."""
        return f"{self.name}-7d4b9c8f6-x2x9q"

    @property
    def service_host(self) -> str:
        """The in-mesh FQDN of the service in front of this workload."""
        return f"{self.app}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True, slots=True)
class ExternalSpec:
    """A host outside the mesh, declared like a ServiceEntry (or reached via passthrough)."""

    host: str
    port: int = 80
    declared: bool = True  # False: reached through PassthroughCluster (ALLOW_ANY)


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole local mesh."""

    workloads: tuple[WorkloadSpec, ...]
    externals: tuple[ExternalSpec, ...] = field(default=())

    def services(self) -> dict[str, list[WorkloadSpec]]:
        """Service FQDN → the serving workloads behind it."""
        out: dict[str, list[WorkloadSpec]] = {}
        for w in self.workloads:
            if w.serves:
                out.setdefault(w.service_host, []).append(w)
        return out

    def workload(self, name: str) -> WorkloadSpec:
        """Look a workload up by name."""
        for w in self.workloads:
            if w.name == name:
                return w
        raise KeyError(name)


BOOKINFO = Topology(
    workloads=(
        WorkloadSpec(
            "istio-ingressgateway",
            "istio-ingressgateway",
            namespace="istio-system",
            service_account="istio-ingressgateway-service-account",
            serves=False,
            calls=("productpage",),
        ),
        WorkloadSpec(
            "productpage-v1",
            "productpage",
            service_account="bookinfo-productpage",
            calls=("details", "reviews"),
        ),
        WorkloadSpec(
            "details-v1",
            "details",
            service_account="bookinfo-details",
            calls=("www.googleapis.com",),
        ),
        WorkloadSpec("reviews-v1", "reviews", "v1", service_account="bookinfo-reviews"),
        WorkloadSpec(
            "reviews-v2", "reviews", "v2", service_account="bookinfo-reviews", calls=("ratings",)
        ),
        WorkloadSpec(
            "ratings-v1", "ratings", service_account="bookinfo-ratings", calls=("mongodb",)
        ),
        WorkloadSpec(
            "mongodb-v1", "mongodb", service_account="bookinfo-mongodb", port=27017, protocol="tcp"
        ),
    ),
    externals=(ExternalSpec("www.googleapis.com"),),
)
