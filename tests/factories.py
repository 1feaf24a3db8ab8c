"""Builders of ``Call`` and ``Workload`` values for tests: one place, with readable defaults."""

from __future__ import annotations

from meshwatch.calls import Call, Protocol, Reporter, Workload


def workload(app: str, namespace: str = "default", version: str = "v1") -> Workload:
    """A mesh workload keyed ``<namespace>/<app>`` with its SPIFFE principal."""
    return Workload(
        id=f"{namespace}/{app}",
        namespace=namespace,
        workload=f"{app}-{version}",
        app=app,
        version=version,
        principal=f"spiffe://cluster.local/ns/{namespace}/sa/{app}",
    )


def make_call(
    t: float,
    source: Workload,
    destination: Workload,
    *,
    port: int = 9080,
    protocol: Protocol = Protocol.HTTP,
    method: str = "GET",
    path: str = "/",
    status: int = 200,
    sent: int = 10,
    received: int = 100,
    ms: float = 5.0,
    flags: str = "",
    reporter: Reporter = Reporter.SERVER,
    authority: str = "",
) -> Call:
    """One call as the decoder would produce it."""
    return Call(
        t,
        source,
        destination,
        port,
        protocol,
        method,
        path,
        status,
        sent,
        received,
        ms,
        flags,
        reporter,
        authority,
    )
