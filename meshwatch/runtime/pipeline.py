"""The ingest pipeline: queue → monitor core (→ capture), owned by one task.

The core is touched only from the event loop (this task, the window clock and the HTTP
handlers), so it needs no locks. Blocking work (Parquet writes) goes to a thread.

Overload: the pipeline works in time slices of about 2 ms and yields between them, so the
receivers keep reading; when the pipeline falls behind, the bounded queue fills and the
receiver drops and counts whole messages (``meshwatch_als_entries_dropped_total``) instead of
gRPC flow control silently pushing back on the sidecars, whose own buffers would then drop
out of our sight.
"""

from __future__ import annotations

import asyncio
import logging
import time

from meshwatch.adapters.als.server import AlsReceiver, RateLimitedLog
from meshwatch.adapters.files.capture import CaptureWriter
from meshwatch.counters import IngestCounters
from meshwatch.decoding.wire import entry_count
from meshwatch.errors import CaptureError, DecodeError
from meshwatch.runtime.monitoring import MonitorService

log = logging.getLogger(__name__)

CAPTURE_FLUSH_ROWS = 20_000
CAPTURE_FLUSH_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 5.0
SLICE_SECONDS = 0.002


class Pipeline:
    """Consumes the receiver's queue into the monitor core and the capture."""

    def __init__(
        self,
        receiver: AlsReceiver,
        service: MonitorService,
        counters: IngestCounters,
        capture: CaptureWriter | None,
    ) -> None:
        self.receiver = receiver
        self.service = service
        self.counters = counters
        self.capture = capture
        self._last_flush = time.monotonic()
        self._bad_log = RateLimitedLog(logger=log)

    async def run(self) -> None:
        """Consume forever (until cancelled)."""
        queue = self.receiver.queue
        counters = self.counters
        capture = self.capture
        monitor = self.service.monitor
        publish = self.service.publish
        while True:
            batch = [await queue.get()]
            deadline = time.perf_counter() + SLICE_SECONDS
            while len(batch) < 64 and time.perf_counter() < deadline:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            counters.queue_depth = queue.qsize()
            for stream, message, received_at in batch:
                try:
                    ingested = monitor.ingest_message(stream, message, received_at)
                except Exception as exc:
                    # Malformed entries are left out by the decoder itself (``malformed``
                    # below). Anything that still escapes is a bug: the message's entries are
                    # counted as dropped, with one rate-limited line, and ingest for every
                    # other message and stream goes on.
                    kind, n = entry_count(message)
                    counters.decode_errors["entry"] += 1
                    counters.entries_dropped[(kind, "malformed")] += n
                    reason = str(exc) if isinstance(exc, DecodeError) else repr(exc)
                    self._bad_log.warning(
                        "dropped %d %s entries from %s: %s", n, kind, stream.node_id, reason
                    )
                    continue
                decoded = ingested.decoded
                if decoded.duplicates:
                    counters.entries_duplicate[decoded.kind] += decoded.duplicates
                counters.entries_intermediate += decoded.intermediate
                if decoded.malformed:
                    counters.entries_dropped[(decoded.kind, "malformed")] += decoded.malformed
                    self._bad_log.warning(
                        "dropped %d malformed %s entries from %s: %s",
                        decoded.malformed,
                        decoded.kind,
                        stream.node_id,
                        decoded.first_error[:300],
                    )
                if decoded.retimed:
                    counters.entries_retimed[decoded.kind] += decoded.retimed
                if decoded.truncated:
                    counters.fields_truncated[decoded.kind] += decoded.truncated
                counters.calls_recorded += len(decoded.calls)
                if ingested.events:
                    publish(ingested.events)
                if capture is not None:
                    capture.append(decoded.calls)
            for _ in batch:
                queue.task_done()
            await asyncio.sleep(0)  # let receivers read between batches
            if capture is not None and (
                capture.pending >= CAPTURE_FLUSH_ROWS
                or time.monotonic() - self._last_flush >= CAPTURE_FLUSH_SECONDS
            ):
                await self.flush_capture()

    async def flush_capture(self, closing: bool = False) -> None:
        """Write buffered capture rows from a thread; a failure is counted, never fatal."""
        if self.capture is None:
            return
        self._last_flush = time.monotonic()
        try:
            write = self.capture.close if closing else self.capture.flush
            self.counters.capture_rows_written += await asyncio.to_thread(write)
        except CaptureError as exc:
            self.counters.capture_errors += 1
            log.error("capture write failed, rows lost: %s", exc)

    async def housekeeping(self) -> None:
        """Age out stale edges and flush idle captures, on a timer."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            expired_edges, expired_nodes = self.service.monitor.expire(time.time())
            if expired_edges:
                log.info("aged out %d edges and %d nodes", expired_edges, expired_nodes)
            if (
                self.capture is not None
                and time.monotonic() - self._last_flush >= CAPTURE_FLUSH_SECONDS
            ):
                await self.flush_capture()
