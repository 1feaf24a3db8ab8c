"""``meshwatch bench ingest``: end-to-end ALS ingest rate versus plain upb parsing.

For each batch size (25, 100 entries per message) and stream count (1, 4), a driver process
streams pre-serialized ~700-byte HTTP entries over gRPC on loopback; this process runs the
real receiver, pipeline and graph. In the same run it measures how fast plain upb parsing of
the same messages goes: that is the physical reference, and the ratio is the figure to
compare across machines. Then it feeds 10 million entries over 1,000 edges through decode
and graph (time advancing, so windows slide) and prints RSS as it goes.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

from envoy.service.accesslog.v3 import als_pb2

from meshwatch.adapters.als.server import start_server
from meshwatch.bench.entries import first_message, http_entry, http_messages
from meshwatch.decoding import wire
from meshwatch.decoding.streams import read_identifier
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.graph.mesh_graph import GraphLimits
from meshwatch.monitor.replaying import replay_monitor
from meshwatch.runtime.serving import Service, build_service, run_service
from meshwatch.settings import HostPort, Settings

CALLERS = 50


def parse_rate(messages: list[bytes], batch: int, seconds: float = 1.5) -> float:
    """Entries per second of ``StreamAccessLogsMessage.FromString`` alone."""
    parse_full = als_pb2.StreamAccessLogsMessage.FromString
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m in messages:
            parse_full(m)
        n += len(messages)
    return n * batch / (time.perf_counter() - start)


def _processed(service: Service) -> int:
    c = service.counters
    return c.calls_recorded + sum(c.entries_duplicate.values())


async def _drive_and_measure(
    port: int, batch: int, streams: int, seconds: float, processed: Callable[[], int]
) -> dict[str, float]:
    """Start the driver process against ``port``; entries/s by ``processed()`` after warm-up."""
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshwatch.bench.driver",
        "--port",
        str(port),
        "--streams",
        str(streams),
        "--batch",
        str(batch),
        "--seconds",
        str(seconds + 1.5),
        "--callers",
        str(CALLERS),
        stdout=asyncio.subprocess.PIPE,
    )
    while processed() == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # warm-up: caches, first slices
    t0, n0 = time.perf_counter(), processed()
    await asyncio.sleep(seconds)
    t1, n1 = time.perf_counter(), processed()
    out, _ = await driver.communicate()
    sent = json.loads(out or b"{}")
    return {"rate": (n1 - n0) / (t1 - t0), "sent": float(sent.get("entries", 0))}


async def receive_ceiling(batch: int, streams: int, seconds: float) -> float:
    """Entries/s grpc.aio delivers to a handler that only counts: the transport's own cost."""
    counted = [0]

    async def count_only(
        requests: AsyncIterator[bytes], context: object
    ) -> als_pb2.StreamAccessLogsResponse:
        async for _ in requests:
            counted[0] += batch
        return als_pb2.StreamAccessLogsResponse()

    server, port = await start_server(count_only, HostPort("127.0.0.1", 0), 4 << 20)
    try:
        result = await _drive_and_measure(port, batch, streams, seconds, lambda: counted[0])
    finally:
        await server.stop(0)
    return result["rate"]


async def e2e_rate(batch: int, streams: int, seconds: float, decoder: str) -> dict[str, float]:
    """Run receiver + pipeline here and a driver process against it; entries/s processed."""
    settings = Settings(
        als_listen=HostPort("127.0.0.1", 0),
        http_listen=HostPort("127.0.0.1", 0),
        log_level="ERROR",
        ingest_decoder=decoder,
    )
    service = build_service(settings)
    ready = asyncio.Event()
    server = asyncio.create_task(run_service(service, lambda _: ready.set()))
    await ready.wait()
    result = await _drive_and_measure(
        service.als_port, batch, streams, seconds, lambda: _processed(service)
    )
    service.stop.set()
    await server
    result["dropped"] = float(sum(service.counters.entries_dropped.values()))
    result["edges"] = float(len(service.monitor.graph.edges))
    return result


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_run(total: int, edges: int) -> Iterator[str]:
    """Decode + graph for ``total`` entries over ``edges`` edges; RSS at checkpoints."""
    import random

    parse = wire.choose("auto")[1]
    reporters = 20
    callers = max(1, edges // reporters)
    monitor = replay_monitor(DetectionParams(), Mode.LEARN, edge_ttl=GraphLimits().edge_ttl)
    graph = monitor.graph
    streams = []
    for r in range(reporters):
        first = parse(first_message(r))
        stream = read_identifier(first.identifier)
        monitor.ingest_message(stream, first, time.time())
        streams.append(stream)
    rng = random.Random(11)
    batch = 100
    # One template message per reporter; start times are rewritten each step so slices slide.
    templates = []
    for r in range(reporters):
        m = als_pb2.StreamAccessLogsMessage()
        for i in range(batch):
            m.http_logs.log_entry.append(http_entry(rng, (i + r) % callers, 0))
        templates.append(m)
    t = time.time()
    done = 0
    checkpoint = total // 10
    start = time.perf_counter()
    yield f"rss: {'entries':>12} {'edges':>6} {'RSS MB':>8}"
    yield f"rss: {0:>12,} {0:>6} {rss_mb():>8.1f}"
    step = 0
    while done < total:
        step += 1
        t += 0.5
        for r, m in enumerate(templates):
            for e in m.http_logs.log_entry:
                e.common_properties.start_time.seconds = int(t)
            data = m.SerializeToString()
            monitor.ingest_message(streams[r], parse(data), t)
            done += batch
            if done % checkpoint == 0:
                monitor.expire(t)
                yield f"rss: {done:>12,} {len(graph.edges):>6} {rss_mb():>8.1f}"
    elapsed = time.perf_counter() - start
    yield f"rss: {total:,} entries in {elapsed:.1f}s ({total / elapsed:,.0f} entries/s incl. re-serialising)"


def run_ingest_benchmark(
    seconds: float, rss_entries: int, edges: int, repeat: int = 3
) -> Iterator[str]:
    """All figures, one printed line each. Each rate is the median of ``repeat`` runs, the
    transport ceiling and the decoders measured in turn, so drift on a noisy machine hits
    both sides of a ratio alike."""
    active = wire.choose("auto")[0]
    decoders = ["native", "upb"] if active == "native" else ["upb"]
    yield "meshwatch bench ingest: end-to-end = gRPC receive + wire decode + identity + dedupe + graph update"
    yield f"wire decoders: {', '.join(decoders)} (active by default: {active}; upb is the fallback)"
    sample = http_messages(20, 100, CALLERS, 0, time.time())
    size = sum(map(len, sample)) / (20 * 100)
    yield f"entry size: {size:.0f} bytes serialized; each rate: median of {repeat} runs of {seconds:g} s"
    yield "parse-only = upb StreamAccessLogsMessage.FromString alone; grpc-only = what grpc.aio delivers to a handler that only counts (the transport's own cost)"
    yield (
        f"{'batch':>5} {'streams':>7} {'decoder':>7} {'parse-only/s':>13} {'grpc-only/s':>12} "
        f"{'end-to-end/s':>13} {'e2e/parse':>9} {'e2e/grpc':>8} {'dropped':>8} {'edges':>6}"
    )
    for batch in (25, 100):
        messages = http_messages(max(1, 2000 // batch), batch, CALLERS, 0, time.time())
        for streams in (1, 4):
            references: list[float] = []
            ceilings: list[float] = []
            runs: dict[str, list[dict[str, float]]] = {d: [] for d in decoders}
            for _ in range(repeat):
                references.append(parse_rate(messages, batch))
                ceilings.append(asyncio.run(receive_ceiling(batch, streams, seconds)))
                for decoder in decoders:
                    runs[decoder].append(asyncio.run(e2e_rate(batch, streams, seconds, decoder)))
            reference = statistics.median(references)
            ceiling = statistics.median(ceilings)
            for decoder in decoders:
                rate = statistics.median(r["rate"] for r in runs[decoder])
                dropped = sum(r["dropped"] for r in runs[decoder])
                edges_seen = max(r["edges"] for r in runs[decoder])
                yield (
                    f"{batch:>5} {streams:>7} {decoder:>7} {reference:>13,.0f} {ceiling:>12,.0f} "
                    f"{rate:>13,.0f} {rate / reference:>9.2f} {rate / ceiling:>8.2f} "
                    f"{dropped:>8,.0f} {edges_seen:>6.0f}"
                )
    if rss_entries > 0:
        yield from rss_run(rss_entries, edges)
