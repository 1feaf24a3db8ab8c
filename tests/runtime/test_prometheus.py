"""A real Prometheus (Debian's package; .ci/run installs it) scrapes meshwatch's /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshwatch.localmesh.launcher import LocalMesh, free_port
from tests.conftest import Running, eventually
from tests.runtime.test_envoy_mesh import HTTPBIN_HOST, TOPOLOGY

pytestmark = [pytest.mark.prometheus, pytest.mark.envoy]


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed; .ci/run installs Debian's package")
        pytest.skip("prometheus binary not installed (apt-get install prometheus)")
    return binary


def _start_prometheus(
    binary: str, workdir: Path, target_port: int, token: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: meshwatch\n"
        f"    authorization: {{type: Bearer, credentials: {token}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
    )
    return process, port


def _prometheus(
    binary: str, workdir: Path, target_port: int
) -> tuple[str, subprocess.Popen[bytes] | None]:
    """The Prometheus .ci/run started (meshwatch added through file service discovery), or
    one of our own when running outside CI."""
    shared, sd = (
        os.environ.get("MESHWATCH_TEST_PROMETHEUS"),
        os.environ.get("MESHWATCH_TEST_PROMETHEUS_SD"),
    )
    if shared and sd:
        target = Path(sd) / f"meshwatch-{target_port}.json"
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{target_port}"]}]))
        return shared, None
    process, port = _start_prometheus(binary, workdir, target_port, "scrape-token")
    return f"http://127.0.0.1:{port}", process


@contextlib.asynccontextmanager
async def scraped_mesh(
    meshwatch: Any, binary: str, workdir: Path
) -> AsyncIterator[tuple[str, LocalMesh]]:
    """A meshwatch fed by the local Envoy mesh and scraped by a real Prometheus: yields the
    Prometheus base URL and the mesh."""
    mw: Running = await meshwatch(api_token="scrape-token")
    base, process = _prometheus(binary, workdir, mw.service.http_port)
    try:
        async with LocalMesh(
            TOPOLOGY, mw.service.als_port, workdir / "mesh", flush_seconds=0.2
        ) as mesh:
            yield base, mesh
    finally:
        if process is not None:
            process.terminate()
            await asyncio.to_thread(process.wait, 10)


async def test_prometheus_scrapes_edges_joinable_with_istio_labels(
    meshwatch: Any, prometheus_binary: str, tmp_path: Path
) -> None:
    async with scraped_mesh(meshwatch, prometheus_binary, tmp_path) as (base, mesh):
        for _ in range(7):
            await mesh.request("sleep", HTTPBIN_HOST, "/")
        promql = 'meshwatch_edge_requests_total{destination_workload="httpbin-v1",source_workload_namespace="default"}'

        async def query() -> list[Any] | None:
            result = await _instant(base, promql)
            return result if result and float(result[0]["value"][1]) >= 7 else None

        (series,) = await eventually(query, timeout=30, interval=0.5)
    assert series["metric"]["source_workload"] == "sleep"
    assert series["metric"]["destination_app"] == "httpbin"
    assert series["metric"]["request_protocol"] == "http"
    assert float(series["value"][1]) == 7


DASHBOARD = Path(__file__).parents[2] / "istio" / "grafana" / "meshwatch-dashboard.json"
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)")


def dashboard_promql() -> list[tuple[str, str, set[str]]]:
    """Every PromQL expression of the committed dashboard: (where, query as run, the labels
    each series must carry). Grafana's variables get the values a first visit has."""
    doc = json.loads(DASHBOARD.read_text())
    found: list[tuple[str, str, set[str]]] = []
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            m = LABEL_VALUES.fullmatch(variable["query"])
            assert m, variable["query"]
            found.append(
                (
                    f"variable {variable['name']}",
                    f"group by ({m['label']}) ({m['metric']})",
                    {m["label"]},
                )
            )
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") != "prometheus":
                continue
            query = target["expr"].replace("$__rate_interval", "30s").replace("$namespace", ".*")
            assert "$" not in query, query
            labels = set(LEGEND_LABEL.findall(target.get("legendFormat", "")))
            found.append((f"{panel['title']} / {target['refId']}", query, labels))
    return found


async def _instant(base: str, query: str) -> list[dict[str, Any]]:
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{base}/api/v1/query", params={"query": query}) as r,
        ):
            body = await r.json()
    except (aiohttp.ClientError, OSError):
        return []
    assert body.get("status") == "success", (query, body)
    return list(body["data"]["result"])


async def test_every_dashboard_query_returns_series_with_its_labels_from_real_traffic(
    meshwatch: Any, prometheus_binary: str, tmp_path: Path
) -> None:
    queries = dashboard_promql()
    assert len(queries) >= 8
    results: dict[str, list[dict[str, Any]]] = {}
    async with scraped_mesh(meshwatch, prometheus_binary, tmp_path) as (base, mesh):

        async def all_answer() -> bool:
            for _ in range(5):
                await mesh.request("sleep", HTTPBIN_HOST, "/")
            for where, query, _labels in queries:
                if not results.get(where):
                    results[where] = await _instant(base, query)
            return all(results.values())

        await eventually(all_answer, timeout=60, interval=1.0)
    for where, query, labels in queries:
        for series in results[where]:
            missing = labels - set(series["metric"])
            assert not missing, f"{where}: {query} returned a series without {missing}"
    namespaces = {
        s["metric"]["destination_workload_namespace"] for s in results["variable namespace"]
    }
    assert "default" in namespaces
