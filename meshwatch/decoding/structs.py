"""Small helpers for protobuf ``Struct`` / ``Any`` values found in node metadata and filter state."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2, wrappers_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError as ProtoDecodeError

_STRUCT_URL = "type.googleapis.com/google.protobuf.Struct"
_STRING_URL = "type.googleapis.com/google.protobuf.StringValue"


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values."""
    document: dict[str, Any] = MessageToDict(struct)
    return document


def any_to_mapping(value: AnyProto) -> dict[str, Any] | None:
    """Decode filter-state Any values that carry peer metadata (Struct) ; ``None`` otherwise.

    Istio 1.24+ logs ``upstream_peer`` / ``downstream_peer`` as Structs. A StringValue holding
    ``key=value,key=value`` pairs (what a plain Envoy ``set_filter_state`` produces) is accepted
    too, so the same decoder works on both.
    """
    try:
        if value.type_url == _STRUCT_URL:
            struct = struct_pb2.Struct()
            struct.ParseFromString(value.value)
            return struct_to_dict(struct)
        if value.type_url == _STRING_URL:
            text = wrappers_pb2.StringValue.FromString(value.value).value
            pairs = (item.partition("=") for item in text.split(",") if "=" in item)
            return {k.strip(): v.strip() for k, _, v in pairs}
    except ProtoDecodeError:
        return None
    return None
