"""The ``meshwatch`` command: the only module that parses argv, prints and sets exit codes.

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
from meshwatch.errors import MeshwatchError, SettingsError
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
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshwatch", description="Runtime defence for Istio meshes."
    )
    parser.add_argument("--version", action="version", version=f"meshwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="receive Envoy access logs and serve the live graph")
    _serve_flags(serve)
    demo = sub.add_parser("demo", help="serve against a local Bookinfo mesh of real Envoy sidecars")
    _serve_flags(demo)
    demo.add_argument(
        "--duration", type=float, default=0, help="stop after SECONDS (default: run until Ctrl-C)"
    )
    demo.add_argument("--rate", type=float, default=20.0, help="requests per second into the mesh")
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
        "--list-checks", action="store_true", help="list checks, codes and references"
    )
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    ingest = bench_sub.add_parser("ingest", help="ALS ingest throughput versus plain upb parsing")
    ingest.add_argument("--seconds", type=float, default=4.0, help="duration of each measured run")
    ingest.add_argument(
        "--rss-entries", type=int, default=10_000_000, help="entries for the RSS run (0 skips)"
    )
    ingest.add_argument("--edges", type=int, default=1000, help="distinct edges in the RSS run")
    audit_bench = bench_sub.add_parser(
        "audit", help="time the audit of a generated mesh configuration"
    )
    audit_bench.add_argument("--resources", type=int, default=5000)
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
        "log_level": args.log_level,
    }
    return load_settings(file_values=file_values, env=os.environ, flags=flags)


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
            else:
                from meshwatch.bench.ingest import run_ingest_benchmark

                lines = run_ingest_benchmark(args.seconds, args.rss_entries, args.edges)
            for line in lines:
                print(line, flush=True)
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
            )
            return run_audit(request, print_line)
        settings = _settings(args)
        _logging(settings.log_level)
        if args.command == "serve":
            from meshwatch.runtime.serving import build_service, run_service

            asyncio.run(run_service(build_service(settings)))
        elif args.command == "demo":
            from meshwatch.localmesh.demo import run_demo

            asyncio.run(run_demo(settings, args.duration, args.rate, print_line))
    except SettingsError as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MeshwatchError, OSError) as exc:
        print(f"meshwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def print_line(text: str) -> None:
    """How the demo talks to the user."""
    print(text, flush=True)
