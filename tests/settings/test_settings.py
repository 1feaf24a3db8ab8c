from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshwatch.adapters.files.config_file import read_settings_file
from meshwatch.errors import SettingsError
from meshwatch.settings import HostPort, load_settings


def test_defaults_bind_loopback() -> None:
    s = load_settings()
    assert s.http_listen.is_loopback and s.als_listen.is_loopback
    assert s.api_token == ""


def test_precedence_file_then_env_then_flags() -> None:
    s = load_settings(
        file_values={"window": 30, "http_listen": "127.0.0.1:7000", "trust_domain": "corp.example"},
        env={"MESHWATCH_WINDOW": "45", "MESHWATCH_API_TOKEN": "t0k"},
        flags={"window": "90", "http_listen": None},
    )
    assert s.window == 90.0
    assert s.http_listen == HostPort("127.0.0.1", 7000)
    assert s.api_token == "t0k"
    assert s.trust_domain == "corp.example"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"flags": {"window": "-5"}}, "window"),
        ({"flags": {"als_listen": "nope"}}, "als_listen"),
        ({"env": {"MESHWATCH_QUEUE_MAX_MESSAGES": "x"}}, "MESHWATCH_QUEUE_MAX_MESSAGES"),
        ({"file_values": {"colour": "blue"}}, "unknown setting 'colour'"),
        ({"file_values": {"log_level": "LOUD"}}, "log_level"),
        ({"flags": {"http_listen": "127.0.0.1:99999"}}, "out of range"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_settings_file_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "meshwatch.yaml"
    bad.write_text("window: 30\nhttp_listen: [unclosed\n")
    with pytest.raises(SettingsError, match=r"meshwatch\.yaml:\d+"):
        read_settings_file(bad)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        read_settings_file(tmp_path / "list.yaml")


def test_cli_exits_2_with_one_line_on_a_bad_setting() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meshwatch", "serve", "--window", "zero"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "window" in proc.stderr
