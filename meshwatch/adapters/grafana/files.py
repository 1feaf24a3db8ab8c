"""Writing the generated dashboard and its ConfigMap (the committed copies in istio/grafana)."""

from __future__ import annotations

from pathlib import Path

from meshwatch.adapters.grafana.dashboard import configmap_yaml, dashboard_json

DASHBOARD_FILE = "meshwatch-dashboard.json"
CONFIGMAP_FILE = "meshwatch-dashboard-configmap.yaml"


def generated() -> dict[str, str]:
    """File name → content, as ``meshwatch dashboard --out`` writes them."""
    dashboard = dashboard_json()
    return {DASHBOARD_FILE: dashboard, CONFIGMAP_FILE: configmap_yaml(dashboard)}


def write_dashboard(directory: Path) -> list[Path]:
    """Write both files into ``directory`` (created if needed); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
