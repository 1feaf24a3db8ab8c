"""Types of the native ALS extractor (``_native.pyx``, built by the package)."""

from typing import Any

class Entry:
    cluster: str
    authority: str
    path: str
    tls: bytes
    dla: bytes
    ura: bytes
    flags: bytes
    code: bytes
    fs: list[bytes] | None
    tags: list[bytes] | None
    start_s: int
    start_n: int
    ttl_s: int
    ttl_n: int
    dur_s: int
    dur_n: int
    method: int
    intermediate: bool
    req_bytes: int
    resp_bytes: int

class Message:
    identifier: bytes
    kind: int
    entries: list[Entry]
    @property
    def count(self) -> int: ...

class EndsCache: ...

def parse(raw: bytes) -> Message: ...
def decode(m: Message, decoder: Any, result: Any, received: float) -> Any: ...
def bind(
    call_type: Any,
    ends_type: type,
    protocol_http: Any,
    protocol_tcp: Any,
    duplicate: Any,
    unknown: Any,
    entry_errors: tuple[type[BaseException], ...],
    from_downstream: int,
) -> None: ...
