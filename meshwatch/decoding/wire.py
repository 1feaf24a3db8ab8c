"""The ALS wire decoder in use: the native extractor when it is built, else upb.

Both turn the raw bytes of a ``StreamAccessLogsMessage`` into a message the ``Decoder`` takes,
refuse malformed input with the same ``DecodeError``, and give identical calls (the
differential tests hold them equal). The native one (``decoding._native``, Cython, built by
the package's own build) walks the wire once in C and skips what meshwatch does not read;
upb with the narrow view types of ``decoding.lite`` is the fallback, used when the extension
is not built or when ``ingest_decoder=upb`` forces it for debugging.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from meshwatch.decoding import lite
from meshwatch.errors import SettingsError

native: ModuleType | None
try:
    from meshwatch.decoding import _native as native
except ImportError:  # the extension was not built here: the fallback serves
    native = None

KINDS = ("none", "http", "tcp")


def choose(name: str) -> tuple[str, Callable[[bytes], Any]]:
    """(the decoder's name, its parse function) for a setting of auto, native or upb."""
    if name == "upb" or (name == "auto" and native is None):
        return "upb", lite.parse
    if native is None:
        raise SettingsError(
            "ingest_decoder=native but the native extractor is not built "
            "(reinstall with a C compiler, or use auto or upb)"
        )
    return "native", native.parse


def is_native(message: Any) -> bool:
    return native is not None and type(message) is native.Message


def entry_count(message: Any) -> tuple[str, int]:
    """(kind, number of entries) of a parsed message, without decoding them."""
    if is_native(message):
        return KINDS[message.kind], message.count
    kind = message.WhichOneof("log_entries")
    if kind == "http_logs":
        return "http", len(message.http_logs.log_entry)
    if kind == "tcp_logs":
        return "tcp", len(message.tcp_logs.log_entry)
    return "none", 0
