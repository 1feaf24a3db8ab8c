"""Random and mutated ALS wire bytes: every message is parsed or refused with ``DecodeError``,
and every entry of a parsed message is recorded or counted, never an exception."""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.decoding import wire
from meshwatch.decoding.lite import parse
from meshwatch.decoding.streams import read_identifier
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.errors import DecodeError
from meshwatch.monitor.replaying import replay_monitor
from tests.als_streams import entry, message

_RNG = random.Random(8)
_REAL = message(None, [entry(_RNG, c, 1_796_000_000.0 + c) for c in range(4)])
_STREAM = read_identifier(parse(message(0)).identifier)


_PARSERS = [parse] + ([wire.native.parse] if wire.native else [])


def _ingest_accounts_for_every_entry(raw: bytes) -> None:
    for parser in _PARSERS:  # the upb fallback and, when built, the native extractor
        try:
            parsed = parser(raw)
        except DecodeError:
            continue
        monitor = replay_monitor(DetectionParams(), Mode.LEARN)
        result = monitor.ingest_message(_STREAM, parsed, time.time()).decoded
        accounted = len(result.calls) + result.duplicates + result.intermediate + result.malformed
        assert accounted == result.entries


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(raw: bytes) -> None:
    _ingest_accounts_for_every_entry(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_REAL) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    st.integers(0, len(_REAL)),
)
def test_a_real_message_with_flipped_bytes_or_truncated(
    flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(_REAL)
    for at, value in flips:
        raw[at] = value
    _ingest_accounts_for_every_entry(bytes(raw[:cut]))
