"""A reader of UBJSON (https://ubjson.org), the binary JSON xgboost saves boosters in (``.ubj``), so
serving reads the saved trees with numpy alone. Typed numeric arrays come back as numpy arrays;
everything else as the matching Python value. Big-endian throughout, as the format says."""
from __future__ import annotations

import numpy as np

__all__ = ["loads", "UBJSONError"]

_NUMBERS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4", b"D": ">f8"}
_CONSTANTS = {b"T": True, b"F": False, b"Z": None}


class UBJSONError(ValueError):
    """Bytes that are not the UBJSON this reader understands."""


def loads(blob: bytes):
    """The value encoded in `blob` (which must hold exactly one value)."""
    value, end = _value(blob, 0)
    if end != len(blob):
        raise UBJSONError(f"{len(blob) - end} bytes after the end of the value")
    return value


def _marker(blob, i):
    if i >= len(blob):
        raise UBJSONError("unexpected end of data")
    return blob[i:i + 1], i + 1


def _value(blob, i, marker=None):
    if marker is None:
        marker, i = _marker(blob, i)
        while marker == b"N":                      # no-op padding
            marker, i = _marker(blob, i)
    if marker in _NUMBERS:
        dt = np.dtype(_NUMBERS[marker])
        if i + dt.itemsize > len(blob):
            raise UBJSONError("unexpected end of data")
        return np.frombuffer(blob, dt, 1, i)[0].item(), i + dt.itemsize
    if marker in _CONSTANTS:
        return _CONSTANTS[marker], i
    if marker in (b"S", b"H"):                     # string; high-precision number as its text
        n, i = _count(blob, i)
        text = blob[i:i + n].decode("utf-8")
        return (float(text) if marker == b"H" else text), i + n
    if marker == b"C":
        return blob[i:i + 1].decode("ascii"), i + 1
    if marker == b"[":
        return _array(blob, i)
    if marker == b"{":
        return _object(blob, i)
    raise UBJSONError(f"unknown marker {marker!r} at byte {i - 1}")


def _count(blob, i) -> tuple[int, int]:
    marker, i = _marker(blob, i)
    if marker not in (b"i", b"U", b"I", b"l", b"L"):
        raise UBJSONError(f"expected an integer length at byte {i - 1}, got {marker!r}")
    n, i = _value(blob, i, marker)
    if n < 0:
        raise UBJSONError(f"negative length {n} at byte {i}")
    return n, i


def _container_header(blob, i):
    """Optimised container header: ($type)(#count)."""
    typ = count = None
    if blob[i:i + 1] == b"$":
        typ, i = _marker(blob, i + 1)
        if blob[i:i + 1] != b"#":
            raise UBJSONError(f"a typed container needs a count at byte {i}")
    if blob[i:i + 1] == b"#":
        count, i = _count(blob, i + 1)
    return typ, count, i


def _array(blob, i):
    typ, count, i = _container_header(blob, i)
    if typ in _NUMBERS:                            # a typed numeric array: one numpy read
        dt = np.dtype(_NUMBERS[typ])
        end = i + count * dt.itemsize
        if end > len(blob):
            raise UBJSONError("unexpected end of data in a typed array")
        return np.frombuffer(blob, dt, count, i).astype(dt.newbyteorder("=")), end
    out = []
    if count is not None:
        for _ in range(count):
            v, i = _value(blob, i, typ)
            out.append(v)
        return out, i
    while True:
        marker, j = _marker(blob, i)
        if marker == b"]":
            return out, j
        v, i = _value(blob, i)
        out.append(v)


def _object(blob, i):
    typ, count, i = _container_header(blob, i)
    out = {}
    while count is None or len(out) < count:
        if count is None and blob[i:i + 1] == b"}":
            return out, i + 1
        n, i = _count(blob, i)
        key = blob[i:i + n].decode("utf-8")
        out[key], i = _value(blob, i + n, typ)
    return out, i
