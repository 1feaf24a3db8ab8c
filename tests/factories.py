"""Builders of ``Call`` and ``Workload`` values (and simulated captures) for tests: one place,
with readable defaults."""

from __future__ import annotations

from pathlib import Path

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


def simulated_capture(
    path: Path, seconds: float, *, window: float = 60.0, seed: int = 4, source: str = "live"
) -> Path:
    """A capture directory of simulated Bookinfo traffic from ``EPOCH``, in one file, with
    the metadata ``serve --capture-dir`` writes (``window`` seconds, 6 slices)."""
    from meshwatch.adapters.files.capture import CaptureMeta, CaptureWriter
    from meshwatch.simulation.evaluation import EPOCH
    from meshwatch.simulation.topologies import BOOKINFO
    from meshwatch.simulation.traffic import Simulator

    meta = CaptureMeta(window, 6, "cluster.local", source=source)
    writer = CaptureWriter(path, rotate_seconds=1e9, rotate_rows=10**9, meta=meta)
    for batch in Simulator(BOOKINFO, seed=seed, rate_scale=0.25).calls(EPOCH, EPOCH + seconds):
        writer.append(batch)
    writer.close()
    return path
