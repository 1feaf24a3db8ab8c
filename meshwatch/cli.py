"""The ``meshwatch`` command: parses argv, maps errors to exit codes, and hands each command a
way to print. Subcommand modules (``audit_command``, the demo, the benches) produce text; the
exit code is decided here.

Exit codes: 0 success, 1 runtime failure, 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshwatch import __version__
from meshwatch.errors import MeshwatchError, ModelError, SettingsError
from meshwatch.settings import Settings, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (also $MESHWATCH_CONFIG)")
    parser.add_argument(
        "--als-listen", metavar="HOST:PORT", help="gRPC ALS address (default 127.0.0.1:9900)"
    )
    parser.add_argument(
        "--http-listen", metavar="HOST:PORT", help="HTTP API address (default 127.0.0.1:9902)"
    )
    parser.add_argument(
        "--capture-dir", metavar="DIR", help="write calls to rolling Parquet files here"
    )
    parser.add_argument("--window", metavar="SECONDS", help="sliding window length (default 60)")
    parser.add_argument(
        "--window-slices", metavar="N", help="the window slides in N steps (default 6)"
    )
    parser.add_argument(
        "--window-grace",
        metavar="SECONDS",
        help="judge a window this long after it ends, for late entries (default 2)",
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--mode", help="learn or observe")
    parser.add_argument(
        "--learn-for", metavar="DURATION", help="observe after learning this long, e.g. 2h"
    )
    parser.add_argument("--learn-calls", metavar="N", help="or after this many calls")
    parser.add_argument("--model", metavar="PATH", help="model from `meshwatch train` (NAME.skops)")
    parser.add_argument(
        "--state-dir", metavar="DIR", help="keep learned state here across restarts"
    )
    parser.add_argument(
        "--api-token-file", metavar="FILE", help="read the API bearer token from a file"
    )
    parser.add_argument(
        "--defence",
        choices=["off", "dry-run", "enforce"],
        help="deny anomalous edges with AuthorizationPolicies (default dry-run)",
    )
    parser.add_argument(
        "--policy-dir", metavar="DIR", help="write managed policies here as YAML files"
    )
    parser.add_argument(
        "--policy-kube",
        action="store_true",
        default=None,
        help="write managed policies to the Kubernetes API (in-cluster, or --kubeconfig)",
    )
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig for --policy-kube")


def _api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:9902", help="meshwatch HTTP API")
    parser.add_argument(
        "--token", default=os.environ.get("MESHWATCH_API_TOKEN", ""), help="bearer token"
    )


def _sink_flags(parser: argparse.ArgumentParser) -> None:
    _api_flags(parser)
    parser.add_argument(
        "--policy-dir", type=Path, help="act on this policy directory directly, not the API"
    )
    parser.add_argument(
        "--kube", action="store_true", help="act on the Kubernetes API directly, not meshwatch's"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig for --kube (default: in-cluster)")


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags, in every subcommand: ``--api-token`` must never be taken as
    ``--api-token-file`` (subparsers are built with the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _capture_flags(parser: argparse.ArgumentParser) -> None:
    """What to learn from a capture: window, time range, excluded edges."""
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="window seconds (default: the capture's own, else 60); serve must use the same",
    )
    parser.add_argument(
        "--window-slices", type=int, default=None, help="steps the window slides in (default 6)"
    )
    parser.add_argument("--since", help="learn from this time on (ISO 8601 or epoch seconds)")
    parser.add_argument("--until", help="learn up to this time (ISO 8601 or epoch seconds)")
    parser.add_argument(
        "--exclude-edge",
        action="append",
        default=[],
        metavar="SRC->DST[:PORT]",
        help="leave an edge out of the baseline (node ids or globs); repeatable",
    )
    parser.add_argument(
        "--min-baseline-windows",
        type=int,
        default=10,
        help="windows an edge needs to be judged statistically (default: %(default)s)",
    )


def _capture_selection(args: argparse.Namespace) -> tuple[Any, Any]:
    """(window spec or None, Selection) from the capture flags (``ValueError`` if bad)."""
    from meshwatch.calls import WindowSpec
    from meshwatch.monitor.reviewing import EdgePattern, Selection

    window = None
    if args.window is not None or args.window_slices is not None:
        window = WindowSpec(
            args.window if args.window is not None else 60.0,
            args.window_slices if args.window_slices is not None else 6,
        )
    selection = Selection(
        exclude=tuple(EdgePattern.parse(e) for e in args.exclude_edge),
        since=_instant(args.since),
        until=_instant(args.until),
    )
    return window, selection


def _instant(text: str | None) -> float | None:
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (ISO 8601 or epoch seconds)") from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meshwatch", description="Runtime defence for Istio meshes.")
    parser.add_argument("--version", action="version", version=f"meshwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="receive Envoy access logs and serve the live graph")
    _serve_flags(serve)
    demo = sub.add_parser("demo", help="serve against a local Bookinfo mesh of real Envoy sidecars")
    _serve_flags(demo)
    demo.add_argument(
        "--duration", type=float, default=0, help="stop after SECONDS (default: run until Ctrl-C)"
    )
    demo.add_argument(
        "--once",
        action="store_true",
        help="stop once both attacks are blocked and the proof is printed (for tests)",
    )
    demo.add_argument(
        "--rate", type=float, default=20.0, help="requests per second into the mesh (default 20)"
    )
    audit = sub.add_parser(
        "audit",
        help="check Istio configuration for security and compliance (files, stdin or --cluster)",
        description="Exit status: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.",
    )
    audit.add_argument("paths", nargs="*", help="YAML files or directories; '-' reads stdin")
    audit.add_argument(
        "--cluster", action="store_true", help="audit the live cluster (kubeconfig or in-cluster)"
    )
    audit.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: in-cluster, then $KUBECONFIG / ~/.kube/config)",
    )
    audit.add_argument("--context", help="kubeconfig context")
    audit.add_argument(
        "--include-secrets",
        action="store_true",
        help="list Secrets (names only) to check Gateway credentialName; needs list on secrets",
    )
    audit.add_argument(
        "--root-namespace", default="istio-system", help="Istio root namespace in the cluster"
    )
    audit.add_argument(
        "--format", dest="output_format", choices=("table", "json", "sarif"), default="table"
    )
    audit.add_argument("--fail-on", default="error", help="info, warning or error (default error)")
    audit.add_argument(
        "--suppress",
        action="append",
        default=[],
        metavar="CODE=Kind/ns/name",
        help="suppress a finding (globs allowed); repeatable",
    )
    audit.add_argument(
        "--sarif-root",
        default=".",
        metavar="DIR",
        help="SARIF locations are relative to this directory (default: the current one)",
    )
    audit.add_argument(
        "--at",
        type=_instant,
        default=None,
        metavar="TIME",
        help="judge certificate validity at this time (ISO 8601, e.g. 2027-01-01T00:00:00Z; default: now)",
    )
    audit.add_argument(
        "--list-checks", action="store_true", help="list checks, codes and references"
    )
    train = sub.add_parser(
        "train", help="fit a model from Parquet captures (saved with skops + card)"
    )
    train.add_argument(
        "--from", dest="capture_dir", type=Path, required=True, help="capture directory"
    )
    train.add_argument("--out", type=Path, required=True, help="models/NAME.skops")
    _capture_flags(train)
    train.add_argument("--false-alerts-per-day", type=float, default=1.0)
    train.add_argument("--n-estimators", type=int, default=100)
    evaluate = sub.add_parser(
        "evaluate", help="detection on simulated Bookinfo / Online Boutique attacks"
    )
    evaluate.add_argument(
        "--profile", default="full", help="profile in the evaluation config (full, short)"
    )
    evaluate.add_argument(
        "--config", type=Path, help="evaluation YAML (default: the committed one)"
    )
    evaluate.add_argument("--topology", action="append", choices=["bookinfo", "online-boutique"])
    evaluate.add_argument("--report", type=Path, help="also write the figures as JSON")
    evaluate.add_argument(
        "--without-latency",
        action="store_true",
        help="measure with latency features left out of the model",
    )
    evaluate.add_argument(
        "--save-model", type=Path, help="save the Bookinfo model learned during evaluation"
    )
    baseline = sub.add_parser("baseline", help="manage the learned baseline of a running meshwatch")
    baseline_sub = baseline.add_subparsers(dest="baseline", required=True)
    review = baseline_sub.add_parser(
        "review",
        help="list the edges a capture would teach a baseline, with their evidence",
        description="Edges with calls, windows with traffic, first and last seen, and how well "
        "their ends are identified; excluded edges and time ranges are left out as train would.",
    )
    reviewed = review.add_mutually_exclusive_group(required=True)
    reviewed.add_argument("--from", dest="capture_dir", type=Path, help="capture directory")
    reviewed.add_argument(
        "--model", dest="model_path", type=Path, help="a learned model (NAME.skops): its baseline"
    )
    _capture_flags(review)
    promote = baseline_sub.add_parser("promote", help="stop learning and start alerting now")
    _api_flags(promote)
    approve = baseline_sub.add_parser(
        "approve",
        help="accept an edge as normal: lifts its anomaly and any deny within one reconcile",
    )
    approve.add_argument("source", help="caller node id, e.g. default/productpage")
    approve.add_argument("target", help="callee node id, e.g. default/reviews")
    approve.add_argument("--port", type=int, help="only this port (default: every port seen)")
    _api_flags(approve)
    policies = sub.add_parser("policies", help="runtime defence: the managed DENY policies")
    policies_sub = policies.add_subparsers(dest="policies", required=True)
    _sink_flags(policies_sub.add_parser("list", help="desired policies, states and refusals"))
    explain = policies_sub.add_parser("explain", help="one policy: why, state, simulation, YAML")
    explain.add_argument("name")
    _sink_flags(explain)
    simulate = policies_sub.add_parser(
        "simulate",
        help="replay a model's learned baseline through the policies; exit 1 if any is denied",
    )
    simulate.add_argument("--model", type=Path, required=True, help="NAME.skops")
    simulate.add_argument("--window", type=float, help="the model's window, if not its own")
    simulate.add_argument("--egress-gateway", default="", help="NAMESPACE:key=value")
    _sink_flags(simulate)
    revoke = policies_sub.add_parser(
        "revoke", help="the emergency brake: withdraw one policy, or --all"
    )
    revoke.add_argument("name", nargs="?")
    revoke.add_argument("--all", action="store_true", help="every managed policy")
    _sink_flags(revoke)
    dashboard = sub.add_parser(
        "dashboard",
        help="the Grafana dashboard (JSON on stdout, or the JSON and its ConfigMap into --out)",
    )
    dashboard.add_argument("--out", type=Path, help="directory for both files (istio/grafana)")
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    ingest = bench_sub.add_parser("ingest", help="ALS ingest throughput versus plain upb parsing")
    ingest.add_argument("--seconds", type=float, default=3.0, help="duration of each measured run")
    ingest.add_argument(
        "--repeat", type=int, default=3, help="runs per figure (the median is printed)"
    )
    ingest.add_argument(
        "--rss-entries", type=int, default=10_000_000, help="entries for the RSS run (0 skips)"
    )
    ingest.add_argument("--edges", type=int, default=1000, help="distinct edges in the RSS run")
    audit_bench = bench_sub.add_parser(
        "audit", help="time the audit of a generated mesh configuration"
    )
    audit_bench.add_argument("--resources", type=int, default=5000)
    bench_sub.add_parser("detect", help="scoring time, novel-edge check cost, memory per edge")
    defence_bench = bench_sub.add_parser(
        "defence", help="anomaly to accepted policy latency; planning at 10k anomalies"
    )
    defence_bench.add_argument("--anomalies", type=int, default=100)
    graph_bench = bench_sub.add_parser(
        "graph", help="node-graph and page data routes on a 2,000-node, 10,000-edge graph"
    )
    graph_bench.add_argument("--nodes", type=int, default=2000)
    graph_bench.add_argument("--edges", type=int, default=10_000)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    from meshwatch.adapters.files.config_file import read_settings_file

    config = args.config or (
        Path(os.environ["MESHWATCH_CONFIG"]) if os.environ.get("MESHWATCH_CONFIG") else None
    )
    file_values = read_settings_file(config) if config else {}
    flags: dict[str, Any] = {
        "als_listen": args.als_listen,
        "http_listen": args.http_listen,
        "capture_dir": args.capture_dir,
        "window": args.window,
        "window_slices": args.window_slices,
        "window_grace": args.window_grace,
        "log_level": args.log_level,
        "mode": args.mode,
        "learn_for": args.learn_for,
        "learn_calls": args.learn_calls,
        "model": args.model,
        "state_dir": args.state_dir,
        "api_token": _read_token(args.api_token_file),
        "defence": args.defence,
        "policy_dir": args.policy_dir,
        "policy_kube": args.policy_kube,
        "kubeconfig": args.kubeconfig,
    }
    defaults: dict[str, str] = {}
    if args.command == "demo":
        from meshwatch.localmesh.demo import DEMO_DEFAULTS

        defaults = DEMO_DEFAULTS
    return load_settings(file_values=file_values, env=os.environ, flags=flags, defaults=defaults)


def _read_token(path: str | None) -> str | None:
    """The token in the file; an empty, blank or non-UTF-8 file is an error, never 'no auth'.
    The message never contains the file's content."""
    if path is None:
        return None
    try:
        token = Path(path).read_bytes().decode("utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"cannot read --api-token-file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"--api-token-file {path} is not UTF-8 text") from exc
    if not token:
        raise SettingsError(
            f"--api-token-file {path} is empty: refusing to run the API without auth"
        )
    return token


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "bench":
            if args.bench == "audit":
                from meshwatch.bench.audit import run_audit_benchmark

                lines = run_audit_benchmark(args.resources)
            elif args.bench == "defence":
                from meshwatch.bench.defence import run_defence_benchmark

                lines = iter(run_defence_benchmark(args.anomalies))
            elif args.bench == "graph":
                from meshwatch.bench.graph import run_graph_benchmark

                lines = iter(run_graph_benchmark(args.nodes, args.edges))
            elif args.bench == "detect":
                from meshwatch.bench.detect import run_detect_benchmark

                lines = run_detect_benchmark()
            else:
                from meshwatch.bench.ingest import run_ingest_benchmark

                lines = run_ingest_benchmark(
                    args.seconds, args.rss_entries, args.edges, max(1, args.repeat)
                )
            for line in lines:
                print(line, flush=True)
            return EXIT_OK
        if args.command == "dashboard":
            from meshwatch.adapters.grafana.dashboard import dashboard_json
            from meshwatch.adapters.grafana.files import write_dashboard

            if args.out is None:
                print(dashboard_json(), end="")
            else:
                for path in write_dashboard(args.out):
                    print(f"wrote {path}")
            return EXIT_OK
        if args.command == "audit":
            from meshwatch.audit_command import AuditRequest, list_checks, run_audit

            if args.list_checks:
                print_line(list_checks(args.output_format))
                return EXIT_OK
            request = AuditRequest(
                paths=args.paths,
                cluster=args.cluster,
                kubeconfig=args.kubeconfig,
                context=args.context,
                include_secrets=args.include_secrets,
                root_namespace=args.root_namespace,
                output_format=args.output_format,
                fail_on=args.fail_on,
                suppress=args.suppress,
                sarif_root=args.sarif_root,
                now=args.at,
            )
            return run_audit(request, print_line)
        if args.command == "policies" or (
            args.command == "baseline" and args.baseline == "approve"
        ):
            return _policies(args)
        if args.command in ("train", "evaluate", "baseline"):
            return _offline(args)
        settings = _settings(args)
        _logging(settings.log_level)
        if args.command == "serve":
            from meshwatch.runtime.serving import build_service, run_service

            asyncio.run(run_service(build_service(settings)))
        elif args.command == "demo":
            from meshwatch.localmesh.demo import run_demo

            asyncio.run(run_demo(settings, args.duration, args.rate, print_line, args.once))
    except SettingsError as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModelError as exc:  # a refused model is a configuration problem, not a crash
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MeshwatchError, OSError) as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _offline(args: argparse.Namespace) -> int:
    """train / evaluate / baseline promote."""
    try:
        if args.command == "train":
            from meshwatch.detection.models import TrainingParams
            from meshwatch.runtime.training import train_from_capture

            params = TrainingParams(
                n_estimators=args.n_estimators,
                target_false_alerts_per_day=args.false_alerts_per_day,
            )
            window, selection = _capture_selection(args)
            train_from_capture(
                args.capture_dir,
                args.out,
                window,
                params,
                print_line,
                selection,
                args.min_baseline_windows,
            )
            return EXIT_OK
        if args.command == "evaluate":
            from meshwatch.runtime.training import evaluation_profile, run_evaluation

            config = evaluation_profile(args.profile, args.config)
            if args.without_latency:
                import dataclasses

                config = dataclasses.replace(config, use_latency=False)
            reports = run_evaluation(
                config, args.topology or ["bookinfo", "online-boutique"], print_line, args.report
            )
            if args.save_model is not None:
                from meshwatch.adapters.files.models import save_bundle

                bundle = next(
                    (r.bundle for r in reports if r.topology == "bookinfo" and r.bundle), None
                )
                if bundle is None:
                    raise ModelError("no Bookinfo model was learned in this evaluation")
                for path in save_bundle(bundle, args.save_model):
                    print_line(f"saved {path}")
            return EXIT_OK
        if args.baseline == "review":
            from meshwatch.runtime.training import review_capture, review_model

            if args.model_path is not None:
                for line in review_model(args.model_path, args.min_baseline_windows):
                    print_line(line)
                return EXIT_OK
            window, selection = _capture_selection(args)
            for line in review_capture(
                args.capture_dir, window, selection, args.min_baseline_windows
            ):
                print_line(line)
            return EXIT_OK
        return _promote(args.url, args.token)
    except (ModelError, ValueError, OSError, MeshwatchError) as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _policies(args: argparse.Namespace) -> int:
    """``policies list|explain|simulate|revoke`` and ``baseline approve``."""
    from meshwatch.runtime import policy_commands as commands

    target = commands.Target(
        url=args.url,
        token=args.token,
        policy_dir=getattr(args, "policy_dir", None),
        kube=getattr(args, "kube", False),
        kubeconfig=getattr(args, "kubeconfig", None),
    )
    try:
        if args.command == "baseline":
            return commands.approve_edge(target, args.source, args.target, args.port, print_line)
        if args.policies == "list":
            return commands.list_policies(target, print_line)
        if args.policies == "explain":
            return commands.explain_policy(target, args.name, print_line)
        if args.policies == "simulate":
            return commands.simulate_policies(
                target, args.model, args.window, args.egress_gateway, print_line
            )
        if bool(args.name) == bool(args.all):
            print("meshwatch: give a policy NAME or --all", file=sys.stderr)
            return EXIT_USAGE
        return commands.revoke_policies(target, None if args.all else args.name, print_line)
    except (MeshwatchError, ValueError, OSError) as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _promote(url: str, token: str) -> int:
    from meshwatch.runtime.policy_commands import Target, call_api

    if not url.startswith(("http://", "https://")):
        print(f"meshwatch: --url must be http(s), got {url!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        doc = call_api(
            Target(url=url, token=token, direct_hint=False),
            "POST",
            "/api/v1/baseline/promote",
            what="promote",
            timeout=120,  # a fit can take a while
        )
    except MeshwatchError as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    card = doc.get("model") or {}
    print_line(
        f"now observing: {card.get('edge_count', '?')} edges learned, threshold {card.get('threshold', '?')}"
    )
    return EXIT_OK


def print_line(text: str) -> None:
    """How the demo talks to the user."""
    print(text, flush=True)
