# Direct access to the slots of slotted Python classes, for the native hot paths
# (decoding/_native.pyx, graph/_recording.pyx). A slotted class stores each attribute at a
# fixed offset, which its member descriptor records; reading it there skips the attribute
# protocol. Only object slots of the exact classes bound are used this way.

from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef extern from "structmember.h":
    int T_OBJECT_EX


cdef inline Py_ssize_t slot_offset(object cls, str name) except -1:
    """Where ``cls`` keeps ``name`` (``TypeError`` unless it is an object slot)."""
    import types

    descriptor = cls.__dict__[name]
    if type(descriptor) is not types.MemberDescriptorType:
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    cdef PyMemberDef* member = (<PyMemberDescrObject*>descriptor).d_member
    if member.type != T_OBJECT_EX:
        raise TypeError(f"{cls.__name__}.{name} is not an object slot")
    return member.offset


cdef inline object slot_get(object o, Py_ssize_t offset):
    cdef PyObject* value = (<PyObject**>((<char*><PyObject*>o) + offset))[0]
    if value is NULL:
        raise AttributeError("slot not set")
    return <object>value


cdef inline void slot_put(object o, Py_ssize_t offset, object value) noexcept:
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>o) + offset)
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)
