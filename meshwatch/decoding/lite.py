"""Narrow "view" types of the ALS messages: only the fields meshwatch reads.

Why: on the ingest hot path the cost is not upb's parser but Python's access to what it built.
Every nested message read creates a wrapper object (~100 ns), and fully parsing fields nobody
reads (request header maps, user agents, addresses) costs as much again. These view types are
wire-compatible with ``envoy.service.accesslog.v3.StreamAccessLogsMessage``: the same field
numbers, generated from the real descriptors at import time so they cannot drift, with

* fields meshwatch never reads left out (upb skips them as unknown fields),
* sub-messages that are read rarely or only as a cache key (``tls_properties``,
  ``response_code``, ``response_flags``, addresses) declared as ``bytes``, so one attribute
  read returns the raw sub-message and a dict lookup resolves it,
* maps (``filter_state_objects``, ``custom_tags``) declared as repeated raw entries, decoded
  only when present.

Strings that are kept are still UTF-8 validated by upb, and the wire structure of the whole
message is still checked, so a malformed message is rejected just as by the full type.
"""

from __future__ import annotations

from typing import Any

from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError as ProtoDecodeError

from meshwatch.errors import DecodeError

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "meshwatch.lite"

# (view name, real message, {field name: view type}); a view type is a scalar type constant,
# "bytes", "repeated bytes", or the name of another view message.
_VIEWS: tuple[tuple[str, Descriptor, dict[str, Any]], ...] = (
    (
        "Stream",
        als_pb2.StreamAccessLogsMessage.DESCRIPTOR,
        {"identifier": "bytes", "http_logs": "HttpEntries", "tcp_logs": "TcpEntries"},
    ),
    (
        "HttpEntries",
        als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries.DESCRIPTOR,
        {"log_entry": "repeated HttpEntry"},
    ),
    (
        "TcpEntries",
        als_pb2.StreamAccessLogsMessage.TCPAccessLogEntries.DESCRIPTOR,
        {"log_entry": "repeated TcpEntry"},
    ),
    (
        "HttpEntry",
        accesslog_pb2.HTTPAccessLogEntry.DESCRIPTOR,
        {"common_properties": "Common", "request": "Request", "response": "Response"},
    ),
    (
        "TcpEntry",
        accesslog_pb2.TCPAccessLogEntry.DESCRIPTOR,
        {"common_properties": "Common", "connection_properties": "Connection"},
    ),
    (
        "Common",
        accesslog_pb2.AccessLogCommon.DESCRIPTOR,
        {
            "downstream_local_address": "bytes",
            "tls_properties": "bytes",
            "start_time": "Time",
            "time_to_last_downstream_tx_byte": "Time",
            "upstream_remote_address": "bytes",
            "upstream_cluster": _F.TYPE_STRING,
            "response_flags": "bytes",
            "filter_state_objects": "repeated bytes",
            "custom_tags": "repeated bytes",
            "duration": "Time",
            "intermediate_log_entry": _F.TYPE_BOOL,
        },
    ),
    (
        "Request",
        accesslog_pb2.HTTPRequestProperties.DESCRIPTOR,
        {
            "request_method": _F.TYPE_INT32,
            "authority": _F.TYPE_STRING,
            "port": "bytes",
            "path": _F.TYPE_STRING,
            "request_body_bytes": _F.TYPE_UINT64,
        },
    ),
    (
        "Response",
        accesslog_pb2.HTTPResponseProperties.DESCRIPTOR,
        {
            "response_code": "bytes",
            "response_body_bytes": _F.TYPE_UINT64,
        },
    ),
    (
        "Connection",
        accesslog_pb2.ConnectionProperties.DESCRIPTOR,
        {
            "received_bytes": _F.TYPE_UINT64,
            "sent_bytes": _F.TYPE_UINT64,
        },
    ),
)
# google.protobuf.Timestamp and Duration share one layout: seconds = 1, nanos = 2.
_TIME = ("Time", {"seconds": (1, _F.TYPE_INT64), "nanos": (2, _F.TYPE_INT32)})
# A map entry on the wire: key = 1, value = 2.
_PAIRS = (("StringPair", _F.TYPE_STRING), ("AnyPair", _F.TYPE_BYTES))


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="meshwatch/lite_als.proto", package=_PACKAGE, syntax="proto3"
    )
    for view_name, real, fields in _VIEWS:
        message = file.message_type.add(name=view_name)
        for field_name, view_type in fields.items():
            number = real.fields_by_name[field_name].number
            label = _F.LABEL_OPTIONAL
            kind = view_type
            if isinstance(kind, str) and kind.startswith("repeated "):
                label, kind = _F.LABEL_REPEATED, kind.removeprefix("repeated ")
            field = message.field.add(name=field_name, number=number, label=label)
            oneof = real.fields_by_name[field_name].containing_oneof
            if oneof is not None and label == _F.LABEL_OPTIONAL:
                if not message.oneof_decl or message.oneof_decl[-1].name != oneof.name:
                    message.oneof_decl.add(name=oneof.name)
                field.oneof_index = len(message.oneof_decl) - 1
            if kind == "bytes":
                field.type = _F.TYPE_BYTES
            elif isinstance(kind, str):
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{kind}"
            else:
                field.type = kind
    time_message = file.message_type.add(name=_TIME[0])
    for name, (number, kind) in _TIME[1].items():
        time_message.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
    for name, value_type in _PAIRS:
        pair = file.message_type.add(name=name)
        pair.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        pair.field.add(name="value", number=2, type=value_type, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = [m.name for m in file.message_type]
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{n}"))
        for n in names
    }


_CLASSES = _build()


def parse(raw: bytes) -> Any:
    """Parse one ALS message into the view type (``DecodeError`` when malformed)."""
    try:
        return LiteStream.FromString(raw)
    except ProtoDecodeError as exc:
        raise DecodeError(f"malformed ALS message: {exc}") from exc


LiteStream: Any = _CLASSES["Stream"]
StringPair: Any = _CLASSES["StringPair"]
AnyPair: Any = _CLASSES["AnyPair"]
