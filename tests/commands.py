"""Run the ``meshwatch`` command as a user would, in a subprocess."""

from __future__ import annotations

import subprocess
import sys

LOOPBACK = ("--als-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")


def meshwatch_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``meshwatch ARGS...``; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def serve_until_it_fails(*args: str) -> subprocess.CompletedProcess[str]:
    """``meshwatch serve`` on loopback ports, for settings it must refuse before listening."""
    return meshwatch_cli("serve", *LOOPBACK, *args, timeout=60)
