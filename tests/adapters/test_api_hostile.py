"""The HTTP API against clumsy and hostile clients: 4xx with a plain reason, never a 500, no
traceback in the logs, no secret echoed, no way around the token."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshwatch.monitor.readmodel import AnomalyQuery
from tests.conftest import Running


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    return answer


async def test_a_token_that_is_not_utf8_is_a_401_not_a_500(meshwatch: Any) -> None:
    mw: Running = await meshwatch(api_token="café")
    for token in (b"caf\xe9", b"caf\xc3\xa9\xff", b"\xff" * 40):
        answer = await _raw(
            mw.service.http_port,
            b"GET /api/v1/graph HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + token
            + b"\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
    ok = await _raw(
        mw.service.http_port,
        b"GET /api/v1/graph HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer caf\xc3\xa9\r\n\r\n",
    )
    assert ok.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "query",
    [
        "limit=-1",
        "limit=0",
        "limit=1001",
        "limit=1_0",
        "limit=%D9%A3",  # an Arabic-Indic three
        "limit=1e3",
        "since=nan",
        "since=inf",
        "since=-5",
        "since=1_0",
        "kind=everything",
    ],
)
async def test_bad_anomaly_filters_are_a_plain_400(meshwatch: Any, query: str) -> None:
    mw: Running = await meshwatch()
    answer = await _raw(
        mw.service.http_port, f"GET /api/v1/anomalies?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    body = answer.partition(b"\r\n\r\n")[2].decode()
    assert "bad query" in body
    for internal in ("Traceback", "ValueError", "invalid literal", "float("):
        assert internal not in body


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "limit", "since", "source"]), st.text(max_size=12)))
def test_anomaly_filters_parse_or_refuse_plainly(query: dict[str, str]) -> None:
    try:
        parsed = AnomalyQuery.parse(query)
    except ValueError as exc:
        refusal = str(exc)
        parsed = None
    if parsed is None:
        assert refusal and "Traceback" not in refusal  # a plain reason, nothing else escapes
    else:
        assert 1 <= parsed.limit <= 1000 and parsed.since >= 0


async def test_requests_aiohttp_cannot_parse_log_one_warning_line(
    meshwatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mw: Running = await meshwatch()
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    for request in (
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        assert (await _raw(mw.service.http_port, request)).startswith(b"HTTP/1.")
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 3
    for record in records:
        assert record.levelno == logging.WARNING
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert len(record.getMessage()) < 400
