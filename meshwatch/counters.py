"""Plain integer counters of the ingest path.

The receiver and the pipeline bump these (an integer add costs nothing next to a
prometheus-client ``inc()``); the metrics adapter reads them at scrape time. Keeping them in a
pure module lets the gRPC and metrics adapters stay independent of each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ENTRY_KINDS = ("http", "tcp")
DROP_REASONS = ("queue_full", "malformed")
"""Every reason an entry is dropped: metrics export each one from zero, so a dashboard's
``rate()`` has a series before the first drop (Prometheus' advice for known label values)."""


@dataclass(slots=True)
class IngestCounters:
    """Everything the ingest path counts. Keys of the Counters are bounded enums/strings."""

    entries_received: Counter[str] = field(default_factory=Counter)  # by kind: http|tcp
    entries_dropped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, reason)
    entries_duplicate: Counter[str] = field(default_factory=Counter)  # by kind
    entries_intermediate: int = 0
    entries_retimed: Counter[str] = field(default_factory=Counter)  # by kind
    fields_truncated: Counter[str] = field(default_factory=Counter)  # by kind
    messages_received: int = 0
    bytes_received: int = 0
    decode_errors: Counter[str] = field(default_factory=Counter)  # by reason
    streams_opened: int = 0
    streams_open: int = 0
    stream_errors: Counter[str] = field(default_factory=Counter)  # by reason
    stream_reconnects: int = 0
    stream_gap_seconds: float = 0.0
    calls_recorded: int = 0
    capture_rows_written: int = 0
    capture_errors: int = 0
    queue_depth: int = 0
