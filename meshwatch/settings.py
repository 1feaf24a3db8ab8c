"""One typed settings object, merged once from defaults, a YAML file, the environment and flags.

Precedence (lowest first): built-in defaults, the config file, ``MESHWATCH_*`` environment
variables, command-line flags. Every value is validated here, and a bad one raises
``SettingsError`` with a one-line message naming the setting and where it came from; the CLI
turns that into exit code 2. This module does no I/O: the caller reads the file and passes
its mapping in.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshwatch.errors import SettingsError

ENV_PREFIX = "MESHWATCH_"


@dataclass(frozen=True, slots=True)
class HostPort:
    """A listen address. ``host`` may be an IPv4/IPv6 literal or ``localhost``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``meshwatch serve`` can be told. Field docs are the user documentation."""

    als_listen: HostPort = HostPort("127.0.0.1", 9900)
    """gRPC Access Log Service address Envoy sidecars stream to."""
    http_listen: HostPort = HostPort("127.0.0.1", 9902)
    """HTTP API and /metrics. Loopback unless configured otherwise."""
    api_token: str = ""
    """When set, every API request except /healthz and /readyz needs ``Authorization: Bearer``."""
    capture_dir: Path | None = None
    """Write every decoded call to rolling Parquet files here (input for training)."""
    capture_rotate_seconds: float = 300.0
    """Close a capture file after this long, so finished files appear regularly."""
    capture_rotate_rows: int = 500_000
    """Close a capture file after this many rows."""
    window: float = 60.0
    """Length of each edge's sliding statistics window, in seconds."""
    window_slices: int = 6
    """The window slides in steps of window / window_slices."""
    als_verify_peer: bool = True
    """An ALS stream's node id must carry the IP it connects from (relax behind NAT)."""
    min_baseline_windows: int = 10
    """An edge is judged statistically only once its learned baseline holds this many windows."""
    min_baseline_calls: int = 50
    """...and this many calls; until then it is "warming up" (novel-edge rule only)."""
    max_clock_skew: float = 60.0
    """An entry starting later than this after it was received is placed at receive time."""
    max_entry_age: float = 86_400.0
    """An entry starting longer than this before it was received is placed at receive time."""
    window_grace: float = 2.0
    """A window is judged this many seconds after it ends, so entries Envoy flushes late
    (about every second) still count in it."""
    edge_ttl: float = 3600.0
    """Edges (and then nodes) with no call for this long age out of the live graph."""
    max_paths_per_edge: int = 64
    """Distinct path templates kept per edge; further ones count as ``<other>``."""
    max_methods_per_edge: int = 16
    """Distinct methods kept per edge."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest ALS message accepted; a larger one closes its stream with RESOURCE_EXHAUSTED."""
    queue_max_messages: int = 2048
    """Messages buffered between the gRPC receiver and the graph; beyond this they are dropped."""
    ingest_decoder: str = "auto"
    """ALS wire decoder and graph recorder: ``native`` (the compiled extractor and recorder),
    ``upb`` (the pure-Python fallbacks, on upb protos: same results), or ``auto`` (native when
    built). Force ``upb`` to debug."""
    trust_domain: str = "cluster.local"
    """SPIFFE trust domain of this mesh."""
    cluster_domain: str = "cluster.local"
    """Kubernetes DNS domain; ``*.svc.<cluster_domain>`` hosts are in the mesh."""
    grace_seconds: float = 2.0
    """Shutdown grace for open gRPC streams and HTTP requests."""
    log_level: str = "INFO"
    """Python logging level."""
    mode: str = "learn"
    """``learn`` (build the baseline, no alerts) or ``observe`` (alert)."""
    learn_for: float = 0.0
    """With mode observe and no model: learn for this long from the first call, then alert (0: unset)."""
    learn_calls: int = 0
    """Or learn until this many calls were seen (0: unset)."""
    model: Path | None = None
    """A model trained by ``meshwatch train`` (NAME.skops, with NAME.json and NAME.baseline.json)."""
    state_dir: Path | None = None
    """Where learned state (baseline, promoted model) is kept across restarts."""
    false_alerts_per_day: float = 1.0
    """Statistical alert budget for the whole mesh, used to calibrate thresholds."""
    min_requests: int = 5
    """Windows with fewer calls are not scored statistically (novel edges still are)."""
    defence: str = "dry-run"
    """off, dry-run or enforce. dry-run writes policies Istio evaluates and logs, never blocks."""
    policy_dir: Path | None = None
    """Write managed AuthorizationPolicies here as YAML files (GitOps, or trying it out)."""
    policy_kube: bool = False
    """Write managed AuthorizationPolicies to the Kubernetes API (server-side apply)."""
    kubeconfig: Path | None = None
    """Kubeconfig for the Kubernetes sink; without it, the in-cluster service account."""
    own_namespace: str = "meshwatch"
    """meshwatch's own namespace: never denied."""
    protected_namespaces: tuple[str, ...] = ()
    """More namespaces never denied, besides istio-system, kube-system and our own."""
    protected_principals: tuple[str, ...] = ()
    """Callers never denied (Istio principal syntax, * as prefix or suffix)."""
    max_policies: int = 50
    """At most this many managed policies at once."""
    max_denies_per_minute: int = 10
    """At most this many new denies a minute; more wait, listed as refused."""
    policy_ttl: float = 900.0
    """A deny lives this long after its anomaly was last active."""
    deny_known_edges: bool = False
    """Allow an edge-wide deny for volume, bytes or error anomalies on a known edge."""
    egress_gateway: str = ""
    """NAMESPACE:key=value[,...] of the egress gateway, where new external hosts are denied."""
    collateral_threshold: int = 0
    """Normal calls a policy may deny in the collateral simulation and still be enforced."""


_HOSTPORT = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-]*)):(?P<port>\d{1,5})$"
)
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def parse_host_port(text: str) -> HostPort:
    """Parse ``HOST:PORT`` / ``[V6]:PORT``; an empty host means 127.0.0.1 (never all interfaces)."""
    match = _HOSTPORT.match(text.strip())
    if match is None:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = match.group("v6") or match.group("host") or "127.0.0.1"
    port = int(match.group("port"))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return HostPort(host, port)


def _positive_float(text: Any) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def _positive_int(text: Any) -> int:
    if isinstance(text, float) and not text.is_integer():
        raise ValueError(f"must be an integer, got {text}")
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def _log_level(text: Any) -> str:
    value = str(text).upper()
    if value not in _LOG_LEVELS:
        raise ValueError(f"must be one of {sorted(_LOG_LEVELS)}")
    return value


def _domain(text: Any) -> str:
    value = str(text).strip().strip(".")
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?", value):
        raise ValueError(f"not a DNS name: {text!r}")
    return value


_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: Any) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` → seconds (0 allowed: unset)."""
    match = _DURATION.match(str(text))
    if match is None:
        raise ValueError(f"expected a duration like 30m, 2h or 7d, got {text!r}")
    return float(match["n"]) * _UNITS[match["unit"]]


def _bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("must be true or false")


def _non_negative_float(text: Any) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= 3600):
        raise ValueError("must be from 0 to 3600")
    return value


def _non_negative_int(text: Any) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _mode(text: Any) -> str:
    value = str(text).lower()
    if value not in ("learn", "observe"):
        raise ValueError("must be learn or observe (defence has its own setting, --defence)")
    return value


def _defence(text: Any) -> str:
    value = str(text).lower()
    if value not in ("off", "dry-run", "enforce"):
        raise ValueError("must be off, dry-run or enforce")
    return value


def _names(text: Any) -> tuple[str, ...]:
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    return tuple(sorted({str(i).strip() for i in items if str(i).strip()}))


def _namespace(text: Any) -> str:
    value = str(text).strip()
    if not re.fullmatch(r"[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?", value):
        raise ValueError(f"not a Kubernetes namespace name: {text!r}")
    return value


def _namespaces(text: Any) -> tuple[str, ...]:
    return tuple(_namespace(n) for n in _names(text))


def _gateway(text: Any) -> str:
    value = str(text).strip()
    if value and not re.fullmatch(r"[a-z0-9\-]+:[^=,\s]+=[^=,\s]*(,[^=,\s]+=[^=,\s]*)*", value):
        raise ValueError(
            "expected NAMESPACE:key=value[,key=value], e.g. istio-system:istio=egressgateway"
        )
    return value


def _ingest_decoder(text: Any) -> str:
    value = str(text).strip().lower()
    if value not in ("auto", "native", "upb"):
        raise ValueError(f"ingest decoder must be auto, native or upb, not {text!r}")
    return value


def _optional_path(text: Any) -> Path | None:
    return Path(str(text)) if text not in (None, "") else None


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "als_listen": lambda v: parse_host_port(str(v)),
    "http_listen": lambda v: parse_host_port(str(v)),
    "api_token": str,
    "capture_dir": _optional_path,
    "capture_rotate_seconds": _positive_float,
    "capture_rotate_rows": _positive_int,
    "window": _positive_float,
    "window_slices": _positive_int,
    "window_grace": _non_negative_float,
    "max_clock_skew": _non_negative_float,
    "min_baseline_windows": _positive_int,
    "min_baseline_calls": _positive_int,
    "als_verify_peer": _bool,
    "max_entry_age": _positive_float,
    "edge_ttl": _positive_float,
    "max_paths_per_edge": _positive_int,
    "max_methods_per_edge": _positive_int,
    "max_message_bytes": _positive_int,
    "queue_max_messages": _positive_int,
    "ingest_decoder": _ingest_decoder,
    "trust_domain": _domain,
    "cluster_domain": _domain,
    "grace_seconds": _positive_float,
    "log_level": _log_level,
    "mode": _mode,
    "learn_for": parse_duration,
    "learn_calls": _non_negative_int,
    "model": _optional_path,
    "state_dir": _optional_path,
    "false_alerts_per_day": _positive_float,
    "min_requests": _positive_int,
    "defence": _defence,
    "policy_dir": _optional_path,
    "policy_kube": _bool,
    "kubeconfig": _optional_path,
    "own_namespace": _namespace,
    "protected_namespaces": _namespaces,
    "protected_principals": _names,
    "max_policies": _positive_int,
    "max_denies_per_minute": _positive_int,
    "policy_ttl": lambda v: _positive_float(parse_duration(v)),
    "deny_known_edges": _bool,
    "egress_gateway": _gateway,
    "collateral_threshold": _non_negative_int,
}
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Settings))
assert set(_PARSERS) == set(FIELD_NAMES), "every setting needs a parser"


def env_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Pick the ``MESHWATCH_<SETTING>`` variables out of an environment."""
    values: dict[str, str] = {}
    for name in FIELD_NAMES:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = environ[key]
    return values


def load_settings(
    *,
    file_values: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge and validate settings; raises ``SettingsError`` with one line on the first problem.

    Precedence, lowest first: ``defaults`` (a command's own, e.g. the demo's short window),
    the config file, the environment, flags."""
    sources: list[tuple[str, Mapping[str, Any]]] = [
        ("default", defaults or {}),
        ("config file", file_values or {}),
        ("environment", env_values(env or {})),
        ("flag", {k: v for k, v in (flags or {}).items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    for origin, values in sources:
        for key, raw in values.items():
            name = key.replace("-", "_")
            if name not in _PARSERS:
                raise SettingsError(f"unknown setting {key!r} in {origin}")
            try:
                merged[name] = _PARSERS[name](raw)
            except (TypeError, ValueError) as exc:
                shown = ENV_PREFIX + name.upper() if origin == "environment" else name
                raise SettingsError(f"invalid {origin} setting {shown}={raw!r}: {exc}") from exc
    settings = Settings(**merged)
    if (
        settings.mode == "observe"
        and settings.model is None
        and settings.state_dir is None
        and not (settings.learn_for or settings.learn_calls)
    ):
        raise SettingsError(
            "mode observe needs --model, a --state-dir holding a learned model, or --learn-for/--learn-calls"
        )
    if settings.window_slices > 120:
        raise SettingsError("invalid setting window_slices: at most 120 slices per window")
    return settings
