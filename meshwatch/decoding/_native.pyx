# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Native ALS hot path: one pass over the protobuf wire format of a ``StreamAccessLogsMessage``.

Why: with upb, parsing is cheap but every field read from Python costs 60 to 100 ns, and an
entry needs about fifteen. Here the wire bytes are walked once, in C, and only the fields
meshwatch uses become Python objects; everything else is skipped without allocating.

Same answers as upb: the oracle is ``decoding.lite`` (upb with meshwatch's narrow view types),
and the differential tests hold the two equal on real Envoy messages, generated ones and
mutations. What that means on the wire:

* a field of the view with the wrong wire type is an unknown field, like upb;
* unknown fields are skipped, but their structure is checked: varints of at most 10 bytes,
  lengths within the message, fixed widths present, groups closed by their own end tag;
* tags are at most 5 bytes and 32 bits, field number 0 and wire types 6 and 7 are refused;
* nesting (sub-messages plus groups) is limited to 100 levels, as upb's default, and groups
  are skipped with a counter, never by recursion; the recursion over sub-messages follows the
  fixed schema, at most five levels, whatever the input;
* strings that become ``str`` (cluster, authority, path) must be valid UTF-8;
* a singular field seen twice: scalars and bytes take the last value, messages merge; the
  ``log_entries`` oneof starts over when it switches between HTTP and TCP.

Safe by construction: every read goes through ``_Reader``, whose cursor never passes its end;
any malformed input raises ``meshwatch.errors.DecodeError``, which the stream handler turns
into INVALID_ARGUMENT.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from meshwatch._slots cimport slot_get, slot_offset

from meshwatch.errors import DecodeError

cdef enum:
    MAX_DEPTH = 100  # upb's default depth limit: sub-messages and groups together
cdef bytes EMPTY = b""
cdef str EMPTY_TEXT = ""

cdef struct _Reader:
    const unsigned char* p
    const unsigned char* end


cdef inline int _varint(_Reader* r, uint64_t* out) except -1:
    # one byte: most lengths and small numbers
    if r.p < r.end and r.p[0] < 0x80:
        out[0] = r.p[0]
        r.p += 1
        return 0
    return _varint_long(r, out)


cdef int _varint_long(_Reader* r, uint64_t* out) except -1:
    cdef uint64_t value = 0
    cdef unsigned char byte
    cdef int i
    for i in range(10):
        if r.p >= r.end:
            raise DecodeError("malformed ALS message: truncated varint")
        byte = r.p[0]
        r.p += 1
        value |= (<uint64_t>(byte & 0x7F)) << (7 * i)
        if not (byte & 0x80):
            out[0] = value
            return 0
    raise DecodeError("malformed ALS message: varint longer than 10 bytes")


cdef inline int _tag(_Reader* r, uint32_t* field, int* wire) except -1:
    # one byte: every field number below 16, which is most of the schema
    cdef unsigned char byte
    if r.p < r.end and r.p[0] < 0x80:
        byte = r.p[0]
        r.p += 1
        if byte < 8:
            raise DecodeError("malformed ALS message: field number 0")
        field[0] = byte >> 3
        wire[0] = byte & 7
        return 0
    return _tag_long(r, field, wire)


cdef int _tag_long(_Reader* r, uint32_t* field, int* wire) except -1:
    cdef uint64_t value = 0
    cdef unsigned char byte
    cdef int i
    for i in range(5):
        if r.p >= r.end:
            raise DecodeError("malformed ALS message: truncated tag")
        byte = r.p[0]
        r.p += 1
        value |= (<uint64_t>(byte & 0x7F)) << (7 * i)
        if not (byte & 0x80):
            if value > 0xFFFFFFFFULL:
                raise DecodeError("malformed ALS message: tag over 32 bits")
            field[0] = <uint32_t>(value >> 3)
            wire[0] = <int>(value & 7)
            if field[0] == 0:
                raise DecodeError("malformed ALS message: field number 0")
            return 0
    raise DecodeError("malformed ALS message: tag longer than 5 bytes")


cdef inline int _length(_Reader* r, _Reader* sub) except -1:
    """Read a length prefix; ``sub`` spans the value and ``r`` moves past it."""
    cdef uint64_t n
    _varint(r, &n)
    if n > <uint64_t>(r.end - r.p):
        raise DecodeError("malformed ALS message: length beyond the message")
    sub.p = r.p
    sub.end = r.p + n
    r.p += n
    return 0


cdef inline int _skip_value(_Reader* r, int wire) except -1:
    """Skip one value of wire type 0, 1, 2 or 5 (1 when done); 0 for any other wire type."""
    cdef uint64_t ignored
    cdef _Reader sub
    if wire == 2:
        _length(r, &sub)
    elif wire == 0:
        _varint(r, &ignored)
    elif wire == 1:
        if r.end - r.p < 8:
            raise DecodeError("malformed ALS message: truncated fixed64")
        r.p += 8
    elif wire == 5:
        if r.end - r.p < 4:
            raise DecodeError("malformed ALS message: truncated fixed32")
        r.p += 4
    else:
        return 0
    return 1


cdef inline int _skip(_Reader* r, uint32_t field, int wire, int depth) except -1:
    """Skip one unknown field whose tag was just read. The two common wire types are handled
    inline (most fields of an entry are skipped, nearly all varints or length-delimited)."""
    cdef uint64_t ignored
    cdef _Reader sub
    if wire == 2:
        _length(r, &sub)
    elif wire == 0:
        _varint(r, &ignored)
    else:
        _skip_other(r, field, wire, depth)
    return 0


cdef int _skip_other(_Reader* r, uint32_t field, int wire, int depth) except -1:
    if _skip_value(r, wire):
        return 0
    if wire == 3:
        return _skip_group(r, field, depth)
    if wire == 4:
        raise DecodeError("malformed ALS message: unexpected end group")
    raise DecodeError("malformed ALS message: invalid wire type")


cdef int _skip_group(_Reader* r, uint32_t field, int depth) except -1:
    """Skip a group whose start tag was just read: with a stack of the open groups' field
    numbers (no recursion), within what is left of the depth budget."""
    cdef uint32_t stack[MAX_DEPTH + 1]
    cdef int top
    cdef uint32_t f
    cdef int w
    if depth + 1 > MAX_DEPTH:
        raise DecodeError("malformed ALS message: nested too deep")
    stack[0] = field
    top = 1
    while top > 0:
        _tag(r, &f, &w)
        if w == 4:
            if f != stack[top - 1]:
                raise DecodeError("malformed ALS message: mismatched end group")
            top -= 1
        elif w == 3:
            if depth + top + 1 > MAX_DEPTH:
                raise DecodeError("malformed ALS message: nested too deep")
            stack[top] = f
            top += 1
        elif not _skip_value(r, w):
            raise DecodeError("malformed ALS message: invalid wire type")
    return 0

# Interning. The values that decide who called whom (cluster, TLS properties, filter state)
# and most others (authority, status, flags, addresses) repeat across entries and messages.
# Recent values are kept in a small direct-mapped table keyed by a hash of their raw bytes,
# checked byte for byte on a hit: a repeat costs a compare instead of a new object, and the
# object it returns has its hash cached for the decoder's dictionaries. Only values up to
# INTERN_MAX bytes are kept, so the table holds at most INTERN_SLOTS * INTERN_MAX bytes.
cdef enum:
    INTERN_SLOTS = 4096
    INTERN_MAX = 512

cdef list _interned_bytes = [None] * INTERN_SLOTS
cdef list _interned_text_raw = [None] * INTERN_SLOTS
cdef list _interned_text = [None] * INTERN_SLOTS


cdef inline Py_ssize_t _slot(const unsigned char* p, Py_ssize_t n):
    cdef uint64_t h = <uint64_t>n * 0x9E3779B97F4A7C15ULL
    cdef uint64_t a = 0, b = 0
    if n >= 8:
        memcpy(&a, p, 8)
        memcpy(&b, p + n - 8, 8)
    else:
        memcpy(&a, p, n)
    if n >= 24:
        memcpy(&b, p + n // 2, 8)
        h ^= b * 0xC2B2AE3D27D4EB4FULL
        memcpy(&b, p + n - 8, 8)
    h ^= a * 0xFF51AFD7ED558CCDULL
    h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ULL
    h ^= b * 0x94D049BB133111EBULL
    h ^= h >> 31
    return <Py_ssize_t>(h >> 52)  # INTERN_SLOTS = 2**12


cdef inline bytes _bytes(_Reader* sub):
    cdef Py_ssize_t n = sub.end - sub.p
    cdef Py_ssize_t i
    cdef object hit
    if n == 0:
        return EMPTY
    if n > INTERN_MAX:
        return PyBytes_FromStringAndSize(<const char*>sub.p, n)
    i = _slot(sub.p, n)
    hit = _interned_bytes[i]
    if hit is not None and PyBytes_GET_SIZE(hit) == n and memcmp(PyBytes_AS_STRING(hit), sub.p, n) == 0:
        return <bytes>hit
    value = PyBytes_FromStringAndSize(<const char*>sub.p, n)
    _interned_bytes[i] = value
    return value


cdef inline str _decode_text(_Reader* sub, Py_ssize_t n):
    try:
        return (<const char*>sub.p)[:n].decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise DecodeError("malformed ALS message: string field had bad UTF-8") from None


cdef inline str _text(_Reader* sub):
    cdef Py_ssize_t n = sub.end - sub.p
    cdef Py_ssize_t i
    cdef object raw
    if n == 0:
        return ""
    if n > INTERN_MAX:
        return _decode_text(sub, n)
    i = _slot(sub.p, n)
    raw = _interned_text_raw[i]
    if raw is not None and PyBytes_GET_SIZE(raw) == n and memcmp(PyBytes_AS_STRING(raw), sub.p, n) == 0:
        return <str>_interned_text[i]
    value = _decode_text(sub, n)  # validated before it is kept
    _interned_text_raw[i] = PyBytes_FromStringAndSize(<const char*>sub.p, n)
    _interned_text[i] = value
    return value


cdef inline str _text_once(_Reader* sub):
    """A string that rarely repeats (the path): decoded, not kept."""
    cdef Py_ssize_t n = sub.end - sub.p
    if n == 0:
        return ""
    return _decode_text(sub, n)


# Entries are parsed into a C array of ``EntryData`` owned by their ``Message``, not into one
# Python object each: an object per entry (allocate, set ten fields, free) cost about a tenth
# of the parse. The object fields hold strong references (NULL = the field's empty value),
# released when the message is freed or its entries are dropped.
cdef struct EntryData:
    PyObject* cluster  # str
    PyObject* authority  # str
    PyObject* path  # str
    PyObject* tls  # bytes, and the four below
    PyObject* dla
    PyObject* ura
    PyObject* flags
    PyObject* code
    PyObject* fs  # list of bytes
    PyObject* tags  # list of bytes
    int64_t start_s, ttl_s, dur_s
    int32_t start_n, ttl_n, dur_n, method
    bint intermediate
    uint64_t req_bytes, resp_bytes


cdef inline void _hold(PyObject** field, object value) noexcept:
    """Store a new reference to ``value`` in ``field``, releasing what it held."""
    cdef PyObject* old = field[0]
    Py_INCREF(value)
    field[0] = <PyObject*>value
    Py_XDECREF(old)


cdef inline void _release(EntryData* e) noexcept:
    Py_XDECREF(e.cluster)
    Py_XDECREF(e.authority)
    Py_XDECREF(e.path)
    Py_XDECREF(e.tls)
    Py_XDECREF(e.dla)
    Py_XDECREF(e.ura)
    Py_XDECREF(e.flags)
    Py_XDECREF(e.code)
    Py_XDECREF(e.fs)
    Py_XDECREF(e.tags)


cdef inline object _or(PyObject* held, object empty):
    return <object>held if held is not NULL else empty


cdef inline object _items(PyObject* held):
    """A repeated field's values, or None when it had none."""
    if held is NULL or len(<list>held) == 0:
        return None
    return <list>held


cdef class Entry:
    """A copy of one parsed entry's fields as Python values (for inspection and tests; the
    decode loop reads the ``EntryData`` in place)."""

    cdef public str cluster, authority, path
    cdef public bytes tls, dla, ura, flags, code
    cdef public list fs, tags
    cdef public int64_t start_s, ttl_s, dur_s
    cdef public int32_t start_n, ttl_n, dur_n, method
    cdef public bint intermediate
    cdef public uint64_t req_bytes, resp_bytes


cdef Entry _copy(EntryData* e):
    cdef Entry out = Entry.__new__(Entry)
    out.cluster = _or(e.cluster, EMPTY_TEXT)
    out.authority = _or(e.authority, EMPTY_TEXT)
    out.path = _or(e.path, EMPTY_TEXT)
    out.tls = _or(e.tls, EMPTY)
    out.dla = _or(e.dla, EMPTY)
    out.ura = _or(e.ura, EMPTY)
    out.flags = _or(e.flags, EMPTY)
    out.code = _or(e.code, EMPTY)
    out.fs = list(<list>e.fs) if e.fs is not NULL else None
    out.tags = list(<list>e.tags) if e.tags is not NULL else None
    out.start_s, out.ttl_s, out.dur_s = e.start_s, e.ttl_s, e.dur_s
    out.start_n, out.ttl_n, out.dur_n, out.method = e.start_n, e.ttl_n, e.dur_n, e.method
    out.intermediate = e.intermediate
    out.req_bytes, out.resp_bytes = e.req_bytes, e.resp_bytes
    return out


@cython.no_gc
cdef class Message:
    """One validated ``StreamAccessLogsMessage``: its identifier and its entries.

    Not tracked by the cyclic garbage collector: it holds only bytes, strings and lists of
    bytes, so it can be in no cycle."""

    cdef public bytes identifier
    cdef public int kind
    cdef EntryData* items
    cdef Py_ssize_t n, cap

    def __cinit__(self):
        self.identifier = EMPTY
        self.kind = 0
        self.items = NULL
        self.n = 0
        self.cap = 0

    def __dealloc__(self):
        self._drop()
        PyMem_Free(self.items)

    cdef void _drop(self) noexcept:
        """Forget every entry (the ``log_entries`` oneof switched kinds)."""
        cdef Py_ssize_t i
        for i in range(self.n):
            _release(&self.items[i])
        self.n = 0

    cdef EntryData* _add(self) except NULL:
        """A zeroed entry at the end. The pointer is good until the next ``_add``."""
        cdef Py_ssize_t cap
        cdef EntryData* grown
        if self.n == self.cap:
            cap = self.cap * 2 if self.cap else 16
            grown = <EntryData*>PyMem_Realloc(self.items, cap * sizeof(EntryData))
            if grown is NULL:
                raise MemoryError()
            self.items = grown
            self.cap = cap
        memset(&self.items[self.n], 0, sizeof(EntryData))
        self.n += 1
        return &self.items[self.n - 1]

    @property
    def count(self):
        return self.n

    @property
    def entries(self):
        return [_copy(&self.items[i]) for i in range(self.n)]


cdef int _time(_Reader* r, int64_t* seconds, int32_t* nanos, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    while r.p < r.end:
        _tag(r, &field, &wire)
        if field == 1 and wire == 0:
            _varint(r, &v)
            seconds[0] = <int64_t>v
        elif field == 2 and wire == 0:
            _varint(r, &v)
            nanos[0] = <int32_t><uint32_t>v
        else:
            _skip(r, field, wire, depth)
    return 0


cdef int _common(_Reader* r, EntryData* e, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    cdef _Reader sub
    while r.p < r.end:
        _tag(r, &field, &wire)
        if wire == 2:
            if field == 15:
                _length(r, &sub)
                _hold(&e.cluster, _text(&sub))
            elif field == 4:
                _length(r, &sub)
                _hold(&e.tls, _bytes(&sub))
            elif field == 5:
                _length(r, &sub)
                _check_depth(depth + 1)
                _time(&sub, &e.start_s, &e.start_n, depth + 1)
            elif field == 12:
                _length(r, &sub)
                _check_depth(depth + 1)
                _time(&sub, &e.ttl_s, &e.ttl_n, depth + 1)
            elif field == 23:
                _length(r, &sub)
                _check_depth(depth + 1)
                _time(&sub, &e.dur_s, &e.dur_n, depth + 1)
            elif field == 21:
                _length(r, &sub)
                if e.fs is NULL:
                    _hold(&e.fs, [])
                (<list>e.fs).append(_bytes(&sub))
            elif field == 22:
                _length(r, &sub)
                if e.tags is NULL:
                    _hold(&e.tags, [])
                (<list>e.tags).append(_bytes(&sub))
            elif field == 16:
                _length(r, &sub)
                _hold(&e.flags, _bytes(&sub))
            elif field == 3:
                _length(r, &sub)
                _hold(&e.dla, _bytes(&sub))
            elif field == 13:
                _length(r, &sub)
                _hold(&e.ura, _bytes(&sub))
            else:
                _skip(r, field, wire, depth)
        elif field == 27 and wire == 0:
            _varint(r, &v)
            e.intermediate = v != 0
        else:
            _skip(r, field, wire, depth)
    return 0


cdef inline int _check_depth(int depth) except -1:
    if depth > MAX_DEPTH:
        raise DecodeError("malformed ALS message: nested too deep")
    return 0


cdef int _request(_Reader* r, EntryData* e, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    cdef _Reader sub
    while r.p < r.end:
        _tag(r, &field, &wire)
        if field == 1 and wire == 0:
            _varint(r, &v)
            e.method = <int32_t><uint32_t>v
        elif field == 5 and wire == 2:
            _length(r, &sub)
            _hold(&e.path, _text_once(&sub))
        elif field == 3 and wire == 2:
            _length(r, &sub)
            _hold(&e.authority, _text(&sub))
        elif field == 12 and wire == 0:
            _varint(r, &v)
            e.req_bytes = v
        elif field == 4 and wire == 2:
            _length(r, &sub)  # port: a bytes field of the view, never read
        else:
            _skip(r, field, wire, depth)
    return 0


cdef int _response(_Reader* r, EntryData* e, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    cdef _Reader sub
    while r.p < r.end:
        _tag(r, &field, &wire)
        if field == 1 and wire == 2:
            _length(r, &sub)
            _hold(&e.code, _bytes(&sub))
        elif field == 3 and wire == 0:
            _varint(r, &v)
            e.resp_bytes = v
        else:
            _skip(r, field, wire, depth)
    return 0


cdef int _connection(_Reader* r, EntryData* e, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef uint64_t v
    while r.p < r.end:
        _tag(r, &field, &wire)
        if field == 1 and wire == 0:
            _varint(r, &v)
            e.req_bytes = v  # received_bytes: downstream -> upstream
        elif field == 2 and wire == 0:
            _varint(r, &v)
            e.resp_bytes = v  # sent_bytes
        else:
            _skip(r, field, wire, depth)
    return 0


cdef int _entry(_Reader* r, int kind, EntryData* e, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef _Reader sub
    _check_depth(depth)
    while r.p < r.end:
        _tag(r, &field, &wire)
        if wire == 2 and field == 1:
            _length(r, &sub)
            _check_depth(depth + 1)
            _common(&sub, e, depth + 1)
        elif wire == 2 and kind == 1 and field == 3:
            _length(r, &sub)
            _check_depth(depth + 1)
            _request(&sub, e, depth + 1)
        elif wire == 2 and kind == 1 and field == 4:
            _length(r, &sub)
            _check_depth(depth + 1)
            _response(&sub, e, depth + 1)
        elif wire == 2 and kind == 2 and field == 2:
            _length(r, &sub)
            _check_depth(depth + 1)
            _connection(&sub, e, depth + 1)
        else:
            _skip(r, field, wire, depth)
    return 0


cdef int _entries(_Reader* r, Message m, int depth) except -1:
    cdef uint32_t field
    cdef int wire
    cdef _Reader sub
    _check_depth(depth)
    while r.p < r.end:
        _tag(r, &field, &wire)
        if field == 1 and wire == 2:
            _length(r, &sub)
            _entry(&sub, m.kind, m._add(), depth + 1)
        else:
            _skip(r, field, wire, depth)
    return 0


def parse(bytes raw not None):
    """Validate one ALS message and extract its entries (``DecodeError`` when malformed)."""
    cdef Message m = Message.__new__(Message)
    cdef _Reader r
    cdef _Reader sub
    cdef uint32_t field
    cdef int wire
    r.p = <const unsigned char*>PyBytes_AS_STRING(raw)
    r.end = r.p + PyBytes_GET_SIZE(raw)
    while r.p < r.end:
        _tag(&r, &field, &wire)
        if wire == 2 and field == 1:
            _length(&r, &sub)
            m.identifier = _bytes(&sub)
        elif wire == 2 and (field == 2 or field == 3):
            _length(&r, &sub)
            if m.kind != <int>(field - 1):
                m.kind = field - 1  # the oneof switches: what the other case held is gone
                m._drop()
            _entries(&sub, m, 1)
        else:
            _skip(&r, field, wire, 0)
    return m


_METHODS = ("", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_ENTRY_ERRORS = None  # set by bind(): the per-entry errors of the upb path


cdef extern from "Python.h":
    ctypedef PyObject* (*allocfunc)(PyTypeObject*, Py_ssize_t)
    ctypedef struct PyTypeObjectAlloc "PyTypeObject":
        allocfunc tp_alloc

cdef Py_ssize_t END_SOURCE, END_DESTINATION, END_PORT, END_SIDE
cdef object _EndsType = None


cdef inline object _call(
    object t, object source, object destination, object port, object protocol, object method,
    object path, object status, object sent, object received, object latency, object flags,
    object side, object authority,
):
    """A ``Call`` built in place: what ``tuple.__new__(Call, (...))`` makes, without the
    intermediate tuple."""
    cdef PyObject* raw = (<PyTypeObjectAlloc*><PyObject*>_Call).tp_alloc(<PyTypeObject*><PyObject*>_Call, 14)
    if raw is NULL:
        raise MemoryError()
    call = <object>raw  # takes a reference of its own...
    Py_DECREF(call)  # ...so the one tp_alloc returned is given back
    Py_INCREF(t); PyTuple_SET_ITEM(call, 0, t)
    Py_INCREF(source); PyTuple_SET_ITEM(call, 1, source)
    Py_INCREF(destination); PyTuple_SET_ITEM(call, 2, destination)
    Py_INCREF(port); PyTuple_SET_ITEM(call, 3, port)
    Py_INCREF(protocol); PyTuple_SET_ITEM(call, 4, protocol)
    Py_INCREF(method); PyTuple_SET_ITEM(call, 5, method)
    Py_INCREF(path); PyTuple_SET_ITEM(call, 6, path)
    Py_INCREF(status); PyTuple_SET_ITEM(call, 7, status)
    Py_INCREF(sent); PyTuple_SET_ITEM(call, 8, sent)
    Py_INCREF(received); PyTuple_SET_ITEM(call, 9, received)
    Py_INCREF(latency); PyTuple_SET_ITEM(call, 10, latency)
    Py_INCREF(flags); PyTuple_SET_ITEM(call, 11, flags)
    Py_INCREF(side); PyTuple_SET_ITEM(call, 12, side)
    Py_INCREF(authority); PyTuple_SET_ITEM(call, 13, authority)
    return call


def bind(
    call_type, ends_type, protocol_http, protocol_tcp, duplicate, unknown, entry_errors,
    from_downstream,
):
    """Hand the module the Python types it builds and compares with (once, at import of
    ``decoding.streams``), so this file imports nothing of meshwatch but its error."""
    global _Call, _HTTP, _TCP, _DUPLICATE, _UNKNOWN, _ENTRY_ERRORS, _FROM_DOWNSTREAM
    global END_SOURCE, END_DESTINATION, END_PORT, END_SIDE, _EndsType
    if not issubclass(call_type, tuple) or call_type.__itemsize__ != tuple.__itemsize__:
        raise TypeError("Call must be a plain tuple subclass")
    END_SOURCE = slot_offset(ends_type, "source")
    END_DESTINATION = slot_offset(ends_type, "destination")
    END_PORT = slot_offset(ends_type, "port")
    END_SIDE = slot_offset(ends_type, "side")
    _EndsType = ends_type
    _Call = call_type
    _HTTP = protocol_http
    _TCP = protocol_tcp
    _DUPLICATE = duplicate
    _UNKNOWN = unknown
    _ENTRY_ERRORS = entry_errors
    _FROM_DOWNSTREAM = from_downstream


_Call = None
_HTTP = None
_TCP = None
_DUPLICATE = None
_UNKNOWN = None
_FROM_DOWNSTREAM = -1


# The decoder's cache of resolved ends is a dict keyed on (cluster, TLS, filter state, tags):
# each lookup builds and hashes that tuple and compares it item by item. Repeated values come
# out of the interning table as the very same objects, so most entries can be matched on the
# objects' addresses instead: ``EndsCache`` is a small direct-mapped table in front of the
# dict. A slot keeps its key tuple (so the addresses it compares stay those of live objects)
# and the ends the dict gave for it. A value that was not interned just misses here and takes
# the dict path; the answer is the dict's either way.
cdef enum:
    FRONT_SLOTS = 512


cdef class EndsCache:
    """Resolved ends by the identity of an entry's key objects (one per stream decoder)."""

    cdef list keys, values

    def __cinit__(self):
        self.keys = [None] * FRONT_SLOTS
        self.values = [None] * FRONT_SLOTS


cdef inline size_t _mix(size_t h, object o):
    return (h ^ <size_t><PyObject*>o) * <size_t>0x9E3779B97F4A7C15ULL


cdef inline Py_ssize_t _front_slot(object cluster, object tls, list fs, list tags):
    cdef size_t h = _mix(_mix(0, cluster), tls)
    cdef object item
    if fs is not None:
        for item in fs:
            h = _mix(h, item)
    if tags is not None:
        h = _mix(h, None)
        for item in tags:
            h = _mix(h, item)
    return <Py_ssize_t>((h >> 40) & (FRONT_SLOTS - 1))


cdef inline bint _same_items(object held, list parsed):
    """``held`` (a key's tuple, or None) holds exactly the objects of ``parsed``."""
    cdef Py_ssize_t i, n
    if parsed is None:
        return held is None
    if held is None:
        return False
    n = len(parsed)
    if len(<tuple>held) != n:
        return False
    for i in range(n):
        if (<tuple>held)[i] is not parsed[i]:
            return False
    return True


def decode(Message m, decoder, result, double received):
    """The calls of one message, exactly as ``StreamDecoder``'s upb loops make them: the
    same caches, the same slow paths (they are the decoder's own methods), the same counts.
    An entry whose sub-fields are malformed is counted (``malformed``), the others kept."""
    cdef list calls = result.calls
    cdef dict cache = decoder._ends
    cdef dict statuses = decoder._statuses
    cdef dict flag_codes = decoder._flags
    cdef object resolve = decoder._resolve
    cdef object status_of = decoder._status
    cdef object flags_of = decoder._flag_codes
    cdef object port_at = decoder._port_at
    cdef object reporter = decoder.reporter
    cdef object host = decoder._resolver.host
    limits = decoder._limits
    cdef double earliest = received - <double>limits.max_age
    cdef double latest = received + <double>limits.max_future
    cdef Py_ssize_t max_field = limits.max_field
    cdef long duplicates = 0, truncated = 0, retimed = 0, malformed = 0, intermediate = 0
    cdef EntryData* e
    cdef Py_ssize_t i
    cdef object cluster, tls, code, raw_flags
    cdef double t, latency
    cdef int http = m.kind == 1
    cdef str first_error = result.first_error
    cdef object ends, key, destination, status, flags, port, authority, path, method
    cdef list fs, tags
    cdef Py_ssize_t slot
    cdef EndsCache front = decoder._front
    cdef list front_keys = front.keys
    cdef list front_values = front.values
    for i in range(m.n):
        e = &m.items[i]
        try:
            if not http and e.intermediate:
                intermediate += 1
                continue
            cluster = _or(e.cluster, EMPTY_TEXT)
            tls = _or(e.tls, EMPTY)
            fs = _items(e.fs)
            tags = _items(e.tags)
            slot = _front_slot(cluster, tls, fs, tags)
            key = front_keys[slot]
            if (
                key is not None
                and (<tuple>key)[0] is cluster
                and (<tuple>key)[1] is tls
                and _same_items((<tuple>key)[2], fs)
                and _same_items((<tuple>key)[3], tags)
            ):
                ends = front_values[slot]
            else:
                key = (
                    cluster,
                    tls,
                    tuple(fs) if fs is not None else None,
                    tuple(tags) if tags is not None else None,
                )
                ends = cache.get(key)
                if ends is None:
                    ends = resolve(key, reporter)
                front_keys[slot] = key
                front_values[slot] = ends
            if ends is _DUPLICATE:
                duplicates += 1
                continue
            if type(ends) is not _EndsType:
                raise TypeError("unexpected ends type")
            if http:
                authority = _or(e.authority, EMPTY_TEXT)
                if len(<str>authority) > max_field:
                    authority = (<str>authority)[:max_field]
                    truncated += 1
                path = _or(e.path, EMPTY_TEXT)
                if len(<str>path) > max_field:
                    path = (<str>path)[:max_field]
                    truncated += 1
                destination = slot_get(ends, END_DESTINATION)
                if destination is None:
                    destination = host(authority) if authority else _UNKNOWN
            else:
                destination = slot_get(ends, END_DESTINATION)
                if destination is None:
                    destination, cut = decoder._sni_destination(key[3])
                    truncated += cut
            port = slot_get(ends, END_PORT)
            if port < 0:
                port = port_at(_or(e.dla, EMPTY) if port == _FROM_DOWNSTREAM else _or(e.ura, EMPTY))
            if http:
                code = _or(e.code, EMPTY)
                status = statuses.get(code)
                if status is None:
                    status = status_of(code)
            raw_flags = _or(e.flags, EMPTY)
            flags = flag_codes.get(raw_flags)
            if flags is None:
                flags = flags_of(raw_flags)
            if http:
                latency = <double>e.ttl_s * 1e3 + <double>e.ttl_n * 1e-6
            else:
                latency = <double>e.dur_s * 1e3 + <double>e.dur_n * 1e-6
            t = <double>e.start_s + <double>e.start_n * 1e-9
            if not (earliest <= t <= latest):
                t = received
                retimed += 1
            if http:
                method = _METHODS[e.method] if 0 <= e.method < 10 else "OTHER"
                calls.append(
                    _call(
                        t, slot_get(ends, END_SOURCE), destination, port, _HTTP, method, path,
                        status, e.req_bytes, e.resp_bytes, latency, flags,
                        slot_get(ends, END_SIDE), authority,
                    )
                )
            else:
                calls.append(
                    _call(
                        t, slot_get(ends, END_SOURCE), destination, port, _TCP, "", "", 0,
                        e.req_bytes, e.resp_bytes, latency, flags, slot_get(ends, END_SIDE), "",
                    )
                )
        except _ENTRY_ERRORS as exc:
            malformed += 1
            if not first_error:
                first_error = f"{type(exc).__name__}: {exc}"
    result.duplicates += duplicates
    result.truncated += truncated
    result.retimed += retimed
    result.malformed += malformed
    result.intermediate += intermediate
    result.first_error = first_error
    return result
