"""One warning line, not a traceback at error level, for requests aiohttp cannot even parse.

An over-long URL or header, or a NUL byte in a request line, is a client's fault (or a
probe's): aiohttp answers 400 and, by default, logs a full traceback at ERROR on
``aiohttp.server``. A scanner could fill the logs and page someone. This filter rewrites such
records into one WARNING line naming the peer and the reason, truncated.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"
MAX_REASON = 200


class BadRequestLines(logging.Filter):
    """Turns parse-error tracebacks into one warning line; passes everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = " ".join(str(exc.message).split())[:MAX_REASON]
            record.msg = "bad HTTP request (answered %s): %s"
            record.args = (exc.code, reason)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


def quiet_bad_requests() -> None:
    """Install the filter on aiohttp's server logger (once, however often called)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, BadRequestLines) for f in logger.filters):
        logger.addFilter(BadRequestLines())
