"""The ingest pipeline: queue → decode → graph (→ capture), owned by one task.

The graph is touched only from the event loop (this task and the HTTP handlers), so it needs
no locks. Blocking work (Parquet writes) goes to a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time

from meshwatch.adapters.als.server import AlsReceiver
from meshwatch.adapters.files.capture import CaptureWriter
from meshwatch.counters import IngestCounters
from meshwatch.errors import CaptureError
from meshwatch.graph.mesh_graph import MeshGraph
from meshwatch.runtime.detecting import Detection

log = logging.getLogger(__name__)

CAPTURE_FLUSH_ROWS = 20_000
CAPTURE_FLUSH_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 5.0
SLICE_SECONDS = 0.002


class Pipeline:
    """Consumes the receiver's queue into the graph and the capture."""

    def __init__(
        self,
        receiver: AlsReceiver,
        graph: MeshGraph,
        counters: IngestCounters,
        capture: CaptureWriter | None,
        detection: Detection | None = None,
    ) -> None:
        self.receiver = receiver
        self.graph = graph
        self.counters = counters
        self.capture = capture
        self.detection = detection
        self._last_flush = time.monotonic()

    async def run(self) -> None:
        """Consume forever (until cancelled)."""
        queue = self.receiver.queue
        counters = self.counters
        graph = self.graph
        capture = self.capture
        resolver = self.receiver.resolver
        generation = resolver.generation
        while True:
            decoder, message = await queue.get()
            batch = [(decoder, message)]
            # Take what is waiting, but only about a time slice's worth: the receivers must get
            # turns to read while we work, so that under overload the bounded queue fills and
            # drops are counted here instead of gRPC flow control silently pushing back on the
            # sidecars (whose own buffers would then drop, out of our sight).
            deadline = time.perf_counter() + SLICE_SECONDS
            while len(batch) < 64 and time.perf_counter() < deadline:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            counters.queue_depth = queue.qsize()
            for decoder, message in batch:
                try:
                    result = decoder.decode(message)
                except Exception:  # a decoder bug must not stop ingest for every stream
                    counters.decode_errors["entry"] += 1
                    log.exception("could not decode a message from %s; skipped", decoder.node_id)
                    continue
                kind = "http" if message.HasField("http_logs") else "tcp"
                if result.duplicates:
                    counters.entries_duplicate[kind] += result.duplicates
                counters.entries_intermediate += result.intermediate
                if resolver.generation != generation:
                    generation = resolver.generation
                    for old_id, workload in resolver.take_aliases():
                        moved = graph.merge_node(old_id, workload)
                        log.info("identity %s is %s: merged %d edges", old_id, workload.id, moved)
                created = graph.record_all(result.calls)
                if self.detection is not None:
                    self.detection.on_ingest(result.calls, created)
                counters.calls_recorded += len(result.calls)
                if capture is not None:
                    capture.append(result.calls)
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
            expired_edges, expired_nodes = self.graph.expire(time.time())
            if expired_edges:
                log.info("aged out %d edges and %d nodes", expired_edges, expired_nodes)
            if (
                self.capture is not None
                and time.monotonic() - self._last_flush >= CAPTURE_FLUSH_SECONDS
            ):
                await self.flush_capture()
