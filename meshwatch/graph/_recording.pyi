"""Types of the native graph recorder (``_recording.pyx``, built by the package)."""

from typing import Any

def bind(
    edge: type,
    window: type,
    part: type,
    sketch: type,
    workload: type,
    http: Any,
    bump: Any,
    samples: int,
    min_value: float,
    call_fields: int,
) -> None: ...

class EdgeCache: ...

def record_all(graph: Any, calls: Any) -> list[Any]: ...
