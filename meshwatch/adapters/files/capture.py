"""Rolling Parquet captures of decoded calls: the input of training and of the notebooks.

Schema (one row per call; stable, extend only by adding columns):

=======================  ==================  ==============================================
column                   type                meaning
=======================  ==================  ==============================================
time                     timestamp[us, UTC]  call start
source_id                string              graph node id of the caller (``ns/app``)
source_namespace         string
source_workload          string
source_app               string
source_version           string
source_principal         string              SPIFFE URI of the caller
source_cluster           string              Istio cluster id
destination_id           string              graph node id of the callee
destination_namespace    string
destination_workload     string
destination_app          string
destination_version      string
destination_principal    string
destination_cluster      string
destination_external     bool                the call left the mesh
destination_provider     string              e.g. ``aws:s3`` for cloud provider APIs
port                     int32               destination port
protocol                 string              ``http`` or ``tcp``
method                   string
path                     string              request path without its query string
authority                string
status                   int32               HTTP status, 0 for TCP
bytes_sent               int64               request body bytes (TCP: bytes to the server)
bytes_received           int64               response body bytes (TCP: bytes to the client)
duration_ms              float64
response_flags           string              Envoy short codes, comma-separated
reporter                 string              ``server`` or ``client``
=======================  ==================  ==============================================

Files are written as ``calls-<UTC start>-<pid>-<seq>.parquet.tmp`` and renamed to ``.parquet`` when
closed (after ``rotate_seconds`` or ``rotate_rows``), so a reader never sees a half file.
Rows are buffered in memory and written as a row group per ``flush``; the runtime flushes
off the event loop.

Captures describe themselves: every file's Parquet metadata records how it was taken
(``meshwatch.window_seconds``, ``meshwatch.window_slices``, ``meshwatch.trust_domain``,
``meshwatch.version``, ``meshwatch.source`` = ``live`` or ``simulated``). ``train`` and the
notebook default to it and refuse a mismatch, and nothing but meshwatch's own capture writer
ever writes into a capture directory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meshwatch import __version__
from meshwatch.calls import Call, Protocol, Reporter, Workload
from meshwatch.errors import CaptureError

SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("source_id", pa.string()),
        ("source_namespace", pa.string()),
        ("source_workload", pa.string()),
        ("source_app", pa.string()),
        ("source_version", pa.string()),
        ("source_principal", pa.string()),
        ("source_cluster", pa.string()),
        ("destination_id", pa.string()),
        ("destination_namespace", pa.string()),
        ("destination_workload", pa.string()),
        ("destination_app", pa.string()),
        ("destination_version", pa.string()),
        ("destination_principal", pa.string()),
        ("destination_cluster", pa.string()),
        ("destination_external", pa.bool_()),
        ("destination_provider", pa.string()),
        ("port", pa.int32()),
        ("protocol", pa.string()),
        ("method", pa.string()),
        ("path", pa.string()),
        ("authority", pa.string()),
        ("status", pa.int32()),
        ("bytes_sent", pa.int64()),
        ("bytes_received", pa.int64()),
        ("duration_ms", pa.float64()),
        ("response_flags", pa.string()),
        ("reporter", pa.string()),
    ]
)


def call_row(call: Call) -> tuple[Any, ...]:
    """A call as a row in ``SCHEMA`` order."""
    s, d = call.source, call.destination
    return (
        int(call.time * 1_000_000),
        s.id,
        s.namespace,
        s.workload,
        s.app,
        s.version,
        s.principal,
        s.cluster_id,
        d.id,
        d.namespace,
        d.workload,
        d.app,
        d.version,
        d.principal,
        d.cluster_id,
        d.external,
        d.provider,
        call.port,
        call.protocol.value,
        call.method,
        call.path.partition("?")[0],
        call.authority,
        call.status,
        call.bytes_sent,
        call.bytes_received,
        call.duration_ms,
        call.response_flags,
        call.reporter.value,
    )


@dataclass(frozen=True, slots=True)
class CaptureMeta:
    """How a capture was taken."""

    window_seconds: float
    window_slices: int
    trust_domain: str
    source: str = "live"  # or "simulated"
    version: str = __version__

    def to_metadata(self) -> dict[bytes, bytes]:
        return {
            b"meshwatch.window_seconds": repr(self.window_seconds).encode(),
            b"meshwatch.window_slices": str(self.window_slices).encode(),
            b"meshwatch.trust_domain": self.trust_domain.encode(),
            b"meshwatch.source": self.source.encode(),
            b"meshwatch.version": self.version.encode(),
        }

    @classmethod
    def from_metadata(cls, meta: dict[bytes, bytes] | None) -> CaptureMeta | None:
        """None for files written before captures described themselves."""
        if not meta or b"meshwatch.window_seconds" not in meta:
            return None
        try:
            return cls(
                float(meta[b"meshwatch.window_seconds"]),
                int(meta.get(b"meshwatch.window_slices", b"6")),
                meta.get(b"meshwatch.trust_domain", b"cluster.local").decode(),
                meta.get(b"meshwatch.source", b"live").decode(),
                meta.get(b"meshwatch.version", b"").decode(),
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise CaptureError(f"capture metadata is malformed: {exc}") from exc


class CaptureWriter:
    """Buffers rows and writes rolling Parquet files. ``flush``/``close`` do blocking I/O."""

    def __init__(
        self, directory: Path, rotate_seconds: float, rotate_rows: int, meta: CaptureMeta
    ) -> None:
        self.directory = directory
        self.meta = meta
        self._schema = SCHEMA.with_metadata(meta.to_metadata())
        self.rotate_seconds = rotate_seconds
        self.rotate_rows = rotate_rows
        self._rows: list[tuple[Any, ...]] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._file_rows = 0
        self._seq = 0
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureError(
                f"cannot create capture directory {directory}: {exc.strerror}"
            ) from exc

    def append(self, calls: list[Call]) -> None:
        """Buffer calls (cheap; runs on the event loop)."""
        self._rows.extend(call_row(c) for c in calls)

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return len(self._rows)

    def flush(self) -> int:
        """Write buffered rows as one row group; rotate when due. Returns rows written."""
        with self._lock:
            rows, self._rows = self._rows, []
            written = 0
            if rows:
                columns = list(zip(*rows, strict=True))
                table = pa.Table.from_arrays(
                    [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
                    schema=self._schema,
                )
                try:
                    self._ensure_open().write_table(table)
                except (OSError, pa.ArrowException) as exc:
                    raise CaptureError(f"cannot write capture {self._path}: {exc}") from exc
                self._file_rows += len(rows)
                written = len(rows)
            if self._writer is not None and (
                self._file_rows >= self.rotate_rows
                or time.monotonic() - self._opened >= self.rotate_seconds
            ):
                self._finish()
            return written

    def close(self) -> int:
        """Flush and close the current file."""
        written = self.flush()
        with self._lock:
            self._finish()
        return written

    def _ensure_open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            self._path = self.directory / f"calls-{stamp}-{os.getpid()}-{self._seq:05d}.parquet.tmp"
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="zstd")
            self._opened = time.monotonic()
            self._file_rows = 0
        return self._writer

    def _finish(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.close()
        self._path.rename(self._path.with_suffix(""))
        self._writer = None
        self._path = None


def _workload(row: dict[str, Any], side: str) -> Workload:
    return Workload(
        id=row[f"{side}_id"],
        namespace=row[f"{side}_namespace"],
        workload=row[f"{side}_workload"],
        principal=row[f"{side}_principal"],
        app=row[f"{side}_app"],
        version=row[f"{side}_version"],
        cluster_id=row[f"{side}_cluster"],
        external=bool(row.get(f"{side}_external", False)),
        provider=row.get(f"{side}_provider") or "",
    )


def calls_from_table(table: pa.Table) -> Iterator[Call]:
    """Captured rows back into ``Call`` values, in time order (workloads interned)."""
    interned: dict[tuple[Any, ...], Workload] = {}
    ordered = table.sort_by("time")
    for batch in ordered.to_batches(max_chunksize=50_000):
        for row in batch.to_pylist():
            ends = []
            for side in ("source", "destination"):
                key = tuple(
                    row.get(f"{side}_{c}")
                    for c in (
                        "id",
                        "namespace",
                        "workload",
                        "principal",
                        "app",
                        "version",
                        "cluster",
                        "external",
                        "provider",
                    )
                )
                workload = interned.get(key)
                if workload is None:
                    workload = interned[key] = _workload(row, side)
                ends.append(workload)
            yield Call(
                row["time"].timestamp(),
                ends[0],
                ends[1],
                row["port"],
                Protocol(row["protocol"]),
                row["method"],
                row["path"],
                row["status"],
                row["bytes_sent"],
                row["bytes_received"],
                row["duration_ms"],
                row["response_flags"],
                Reporter(row["reporter"]),
                row["authority"],
            )


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture directory's finished files, read."""

    table: pa.Table
    files: int
    pending: tuple[str, ...]  # files still being written (``.tmp``)
    metas: tuple[CaptureMeta, ...]  # distinct descriptions found

    @property
    def meta(self) -> CaptureMeta | None:
        """The one description of the capture (``CaptureError`` when files disagree)."""
        windows = {(m.window_seconds, m.window_slices, m.trust_domain) for m in self.metas}
        if len(windows) > 1:
            raise CaptureError(
                "the capture's files were taken with different settings: "
                + ", ".join(f"{w:g}s windows/{s} slices/{t}" for w, s, t in sorted(windows))
            )
        return self.metas[0] if self.metas else None


def read_capture(directory: Path) -> Capture:
    """All finished capture files of a directory (``CaptureError`` when unreadable)."""
    if not directory.is_dir():
        raise CaptureError(f"no capture directory {directory}")
    files = sorted(directory.glob("calls-*.parquet"))
    pending = tuple(sorted(p.name for p in directory.glob("calls-*.parquet.tmp")))
    if not files:
        return Capture(SCHEMA.empty_table(), 0, pending, ())
    try:
        metas = {CaptureMeta.from_metadata(pq.read_schema(f).metadata) for f in files}
        table = pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in files)
    except (OSError, pa.ArrowException) as exc:
        raise CaptureError(f"cannot read captures in {directory}: {exc}") from exc
    found = tuple(sorted((m for m in metas if m is not None), key=repr))
    return Capture(table, len(files), pending, found)
