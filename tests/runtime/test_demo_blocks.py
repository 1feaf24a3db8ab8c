"""``meshwatch demo --once`` as a newcomer runs it: both attacks detected, a policy through the
Kubernetes API, Envoy answers the attacker 403, normal traffic is never denied, and no
process is left behind."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.commands import meshwatch_cli

pytestmark = pytest.mark.envoy


def _figure(pattern: str, text: str) -> tuple[int, ...]:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the demo's output:\n{text[-4000:]}"
    return tuple(int(g) for g in match.groups())


def test_the_demo_detects_blocks_and_spares_normal_traffic() -> None:
    proc = meshwatch_cli("demo", "--once", "--http-listen", "127.0.0.1:0", timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = out.splitlines()[0]  # the page's address comes first, before the mesh starts
    assert re.fullmatch(
        r"meshwatch demo: open http://127\.0\.0\.1:\d+/ for the live graph.*", first
    )
    assert "ANOMALY new-edge: default/productpage -> default/ratings:9080" in out
    assert re.search(r"ANOMALY statistical: default/reviews -> default/ratings:9080: .*paths", out)
    assert "POLICY default/meshwatch-deny-ratings accepted by the Kubernetes API: enforced" in out
    assert "notPaths:" in out and "cluster.local/ns/default/sa/bookinfo-productpage" in out
    assert "LIVE in Envoy: ratings-v1 enforces meshwatch-deny-ratings" in out
    denied, sent = _figure(r"attacker requests denied: (\d+) of (\d+)", out)
    assert denied >= 4 and sent > denied  # the first calls passed, then Envoy said 403
    unseen, _ = _figure(r"scanner's unseen paths denied: (\d+) of (\d+)", out)
    normal_path_denied, normal_path_sent = _figure(r"its normal path denied: (\d+) of (\d+)", out)
    assert unseen >= 4 and normal_path_denied == 0 and normal_path_sent > 0
    assert _figure(r"normal requests denied: (\d+)", out) == (0,)
    browsing, failed = _figure(r"normal browsing: (\d+) requests, (\d+) failed", out)
    assert browsing > 500 and failed == 0
    timeline = re.search(r"novel edge timeline: detected \+([\d.]+) s.*first 403 \+([\d.]+) s", out)
    assert timeline, out[-2000:]
    detected, first_403 = (float(g) for g in timeline.groups())
    assert detected < 1.5 and first_403 - detected < 5.0
    assert "stopped: meshwatch, the control plane, the API emulator and every Envoy" in out
    left = subprocess.run(
        ["pgrep", "-f", "meshwatch-demo-"], capture_output=True, text=True, check=False
    )
    assert left.stdout.strip() == "", f"processes left behind: {left.stdout}"
