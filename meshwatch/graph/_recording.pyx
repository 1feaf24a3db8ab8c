# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native ``MeshGraph.record_all``: the same per-call update, without the interpreter.

Why not compile ``mesh_graph.py`` as it is: measured here, Cython's generic attribute calls on
slotted objects are slower than CPython 3.11's specialised ones (the graph update went from
850 to 1,290 ns a call). What makes C faster is reading the slots where they are: each slotted
class (``Edge``, ``SlidingWindow``, ``Slice``, ``QuantileSketch``, ``Workload``) stores an
attribute at a fixed offset, which its member descriptor records. ``bind`` reads those offsets
once, checking that each is an object slot of exactly the class the graph uses; the loop then
reads and writes the slots directly, with the reference counting CPython itself does. Any
object of another type (a subclass) goes through the Python ``_record`` instead.

Everything else is the Python code's own: new edges, new slices, path templates and sketch
collapses call back into ``mesh_graph``; the arithmetic is Python's (ints stay unbounded); the
tests hold the two recorders to identical graphs.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from libc.math cimport ceil, log

from meshwatch._slots cimport slot_get as _get, slot_offset as _offset, slot_put as _put

cdef Py_ssize_t E_LAST, E_SAMPLES, E_TOTAL, E_WINDOW
cdef Py_ssize_t W_CURRENT, W_MAX_PATHS, W_MAX_METHODS
cdef Py_ssize_t S_END, S_REQUESTS, S_5XX, S_4XX, S_SENT, S_RECEIVED, S_LATENCY, S_PATHS, S_METHODS
cdef Py_ssize_t Q_COUNT, Q_INV, Q_BUCKETS, Q_MAX, Q_ZERO
cdef Py_ssize_t WL_ID
cdef object EdgeType = None, WindowType = None, SliceType = None, SketchType = None
cdef object WorkloadType = None
cdef object _HTTP = None
cdef object _bump = None
cdef Py_ssize_t _SAMPLES = 4
cdef double _MIN_VALUE = 1e-3
cdef Py_ssize_t CALL_FIELDS = 0


def bind(edge, window, part, sketch, workload, http, bump, samples, min_value, call_fields):
    """Learn the slot offsets of the graph's classes (once, at import of ``mesh_graph``)."""
    global E_LAST, E_SAMPLES, E_TOTAL, E_WINDOW, W_CURRENT, W_MAX_PATHS, W_MAX_METHODS
    global S_END, S_REQUESTS, S_5XX, S_4XX, S_SENT, S_RECEIVED, S_LATENCY, S_PATHS, S_METHODS
    global Q_COUNT, Q_INV, Q_BUCKETS, Q_MAX, Q_ZERO, WL_ID
    global EdgeType, WindowType, SliceType, SketchType, WorkloadType, _HTTP, _bump
    global _SAMPLES, _MIN_VALUE, CALL_FIELDS
    E_LAST = _offset(edge, "last_seen")
    E_SAMPLES = _offset(edge, "samples")
    E_TOTAL = _offset(edge, "total_requests")
    E_WINDOW = _offset(edge, "window")
    W_CURRENT = _offset(window, "current")
    W_MAX_PATHS = _offset(window, "max_paths")
    W_MAX_METHODS = _offset(window, "max_methods")
    S_END = _offset(part, "end")
    S_REQUESTS = _offset(part, "requests")
    S_5XX = _offset(part, "errors_5xx")
    S_4XX = _offset(part, "errors_4xx")
    S_SENT = _offset(part, "bytes_sent")
    S_RECEIVED = _offset(part, "bytes_received")
    S_LATENCY = _offset(part, "latency")
    S_PATHS = _offset(part, "paths")
    S_METHODS = _offset(part, "methods")
    Q_COUNT = _offset(sketch, "count")
    Q_INV = _offset(sketch, "inv_log_gamma")
    Q_BUCKETS = _offset(sketch, "buckets")
    Q_MAX = _offset(sketch, "max_buckets")
    Q_ZERO = _offset(sketch, "zero")
    WL_ID = _offset(workload, "id")
    EdgeType, WindowType, SliceType, SketchType, WorkloadType = edge, window, part, sketch, workload
    _HTTP = http
    _bump = bump
    _SAMPLES = samples
    _MIN_VALUE = min_value
    CALL_FIELDS = call_fields


cdef inline bint _count(dict counter, object key) except -1:
    """``counter[key] += 1`` when ``key`` is counted already (one lookup, not two)."""
    cdef PyObject* found = PyDict_GetItem(counter, key)
    if found is NULL:
        return False
    PyDict_SetItem(counter, key, (<object>found) + 1)
    return True


# The graph's edges are keyed on (source id, destination id, port): finding a call's edge
# builds that tuple, hashes it and compares it with the stored ``EdgeKey``, about 150 ns, more
# than the rest of the update. The decoder hands out the same ``Workload`` objects (and port
# ints) for every call of a connection, so ``EdgeCache`` finds most edges by the identity of
# those three objects instead. A slot keeps the objects it compares (so their addresses stay
# theirs) and the edge the dict gave. The graph drops the whole table whenever an edge leaves
# the dict or changes key (``MeshGraph._forget_edges``), so a slot never names an edge the dict
# no longer maps there.
cdef enum:
    EDGE_SLOTS = 1024


cdef class EdgeCache:
    """Edges by the identity of their calls' (source, destination, port) objects."""

    cdef list ends, edges

    def __cinit__(self):
        self.ends = [None] * EDGE_SLOTS
        self.edges = [None] * EDGE_SLOTS


cdef inline Py_ssize_t _edge_slot(object source, object destination, object port):
    cdef size_t h = <size_t><PyObject*>source * <size_t>0x9E3779B97F4A7C15ULL
    h = (h ^ <size_t><PyObject*>destination) * <size_t>0xC2B2AE3D27D4EB4FULL
    h = (h ^ <size_t><PyObject*>port) * <size_t>0x94D049BB133111EBULL
    return <Py_ssize_t>((h >> 40) & (EDGE_SLOTS - 1))


def record_all(graph, calls):
    """``MeshGraph.record_all``, natively: the edges the calls created, each with its first call."""
    cdef dict edges = graph.edges
    cdef dict templates = graph._template_cache
    cdef EdgeCache front = graph._front
    cdef list front_ends = front.ends
    cdef list front_edges = front.edges
    cdef Py_ssize_t before = len(edges)
    cdef Py_ssize_t slot
    cdef list created = []
    cdef object call, held
    cdef object edge, key, source, destination, port
    cdef object python_record = graph._record
    cdef object new_edge = graph._new_edge
    cdef object template_for = graph._template_for
    for call in calls:
        # Items are read with PyTuple_GET_ITEM: a Call is a tuple subclass, and indexing one
        # as a generic object goes through ``tuple.__getitem__`` by name (about 60 ns a read).
        if not isinstance(call, tuple) or len(<tuple>call) != CALL_FIELDS:
            raise TypeError(f"not a Call: {type(call).__name__}")
        source = (<tuple>call)[1]
        destination = (<tuple>call)[2]
        if type(source) is not WorkloadType or type(destination) is not WorkloadType:
            edge = python_record(call, edges, templates)
        else:
            port = (<tuple>call)[3]
            slot = _edge_slot(source, destination, port)
            held = front_ends[slot]
            if (
                held is not None
                and (<tuple>held)[0] is source
                and (<tuple>held)[1] is destination
                and (<tuple>held)[2] is port
            ):
                edge = front_edges[slot]
            else:
                key = (_get(source, WL_ID), _get(destination, WL_ID), port)
                edge = edges.get(key)
                if edge is None:
                    edge = new_edge(call, key)
                if type(edge) is EdgeType:
                    front_ends[slot] = (source, destination, port)
                    front_edges[slot] = edge
            if type(edge) is not EdgeType:
                edge = python_record(call, edges, templates)
            else:
                _record(edge, <tuple>call, templates, template_for)
        if len(edges) != before:
            before = len(edges)
            created.append((edge, call))
    return created


cdef int _record(object edge, tuple call, dict templates, object template_for) except -1:
    cdef double t = call[0]
    cdef double ms
    cdef object window, part, latency, buckets, bucket, template, method, paths, methods
    cdef object samples, raw
    cdef Py_ssize_t total  # an edge's call count: far below 2**63
    cdef long code
    if t > <double>_get(edge, E_LAST):
        _put(edge, E_LAST, call[0])
    total = _get(edge, E_TOTAL)
    samples = _get(edge, E_SAMPLES)
    if type(samples) is not list or len(<list>samples) != _SAMPLES:
        raise TypeError("unexpected samples")
    (<list>samples)[total % _SAMPLES] = call
    _put(edge, E_TOTAL, total + 1)
    window = _get(edge, E_WINDOW)
    if type(window) is not WindowType:
        raise TypeError("unexpected window type")
    part = _get(window, W_CURRENT)
    if part is None or t >= <double>_get(part, S_END):
        part = window.slice_for(call[0])
    if type(part) is not SliceType:
        raise TypeError("unexpected slice type")
    _put(part, S_REQUESTS, _get(part, S_REQUESTS) + 1)
    code = call[7]
    if code >= 500:
        _put(part, S_5XX, _get(part, S_5XX) + 1)
    elif code >= 400:
        _put(part, S_4XX, _get(part, S_4XX) + 1)
    _put(part, S_SENT, _get(part, S_SENT) + call[8])
    _put(part, S_RECEIVED, _get(part, S_RECEIVED) + call[9])
    latency = _get(part, S_LATENCY)
    if type(latency) is not SketchType:
        raise TypeError("unexpected sketch type")
    _put(latency, Q_COUNT, _get(latency, Q_COUNT) + 1)
    ms = call[10]
    if ms > _MIN_VALUE:
        bucket = <long long>ceil(log(ms) * <double>_get(latency, Q_INV))
        buckets = _get(latency, Q_BUCKETS)
        if not _count(<dict>buckets, bucket):
            (<dict>buckets)[bucket] = 1
            if len(<dict>buckets) > _get(latency, Q_MAX):
                latency.collapse()
    else:
        _put(latency, Q_ZERO, _get(latency, Q_ZERO) + 1)
    if call[4] is _HTTP:
        raw = call[6]
        template = templates.get(raw)
        if template is None:
            template = template_for(raw)
        paths = _get(part, S_PATHS)
        if not _count(<dict>paths, template):
            _bump(paths, template, _get(window, W_MAX_PATHS))
        method = call[5]
        methods = _get(part, S_METHODS)
        if not _count(<dict>methods, method):
            _bump(methods, method, _get(window, W_MAX_METHODS))
    return 0
