"""A small CBOR (RFC 8949) encoder and decoder, enough for Smithy RPC v2 CBOR bodies.

Why: Compute Optimizer's current model lists `smithy-rpc-v2-cbor` before `awsJson1_0`; an SDK
that prefers CBOR sends `application/cbor` bodies, and the venv has no CBOR library.
Timestamps are encoded as tag 1 (epoch seconds), as the protocol requires.
"""

import struct


class Timestamp(float):
    """Epoch seconds that encode as CBOR tag 1."""


def encode(value):
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _head(major, n, out):
    if n < 24:
        out.append((major << 5) | n)
    elif n < 0x100:
        out += bytes([(major << 5) | 24, n])
    elif n < 0x10000:
        out.append((major << 5) | 25)
        out += struct.pack(">H", n)
    elif n < 0x100000000:
        out.append((major << 5) | 26)
        out += struct.pack(">I", n)
    else:
        out.append((major << 5) | 27)
        out += struct.pack(">Q", n)


def _encode(v, out):
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, Timestamp):
        _head(6, 1, out)
        out.append(0xFB)
        out += struct.pack(">d", float(v))
    elif isinstance(v, int):
        if v >= 0:
            _head(0, v, out)
        else:
            _head(1, -1 - v, out)
    elif isinstance(v, float):
        out.append(0xFB)
        out += struct.pack(">d", v)
    elif isinstance(v, str):
        data = v.encode("utf-8")
        _head(3, len(data), out)
        out += data
    elif isinstance(v, (bytes, bytearray)):
        _head(2, len(v), out)
        out += v
    elif isinstance(v, (list, tuple)):
        _head(4, len(v), out)
        for item in v:
            _encode(item, out)
    elif isinstance(v, dict):
        _head(5, len(v), out)
        for k, item in v.items():
            _encode(k, out)
            _encode(item, out)
    else:
        raise TypeError(f"cannot CBOR-encode {type(v).__name__}")


class DecodeError(ValueError):
    pass


def decode(data):
    if not data:
        return None
    value, pos = _decode(data, 0)
    if pos != len(data):
        raise DecodeError("trailing bytes after CBOR data item")
    return value


_BREAK = object()


def _length(data, pos, info):
    if info < 24:
        return info, pos
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None:
        raise DecodeError(f"bad additional information {info}")
    if pos + size > len(data):
        raise DecodeError("truncated CBOR")
    return int.from_bytes(data[pos:pos + size], "big"), pos + size


def _decode(data, pos):
    if pos >= len(data):
        raise DecodeError("truncated CBOR")
    initial = data[pos]
    pos += 1
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info in (22, 23):
            return None, pos
        if info == 25:
            return struct.unpack(">e", data[pos:pos + 2])[0], pos + 2
        if info == 26:
            return struct.unpack(">f", data[pos:pos + 4])[0], pos + 4
        if info == 27:
            return struct.unpack(">d", data[pos:pos + 8])[0], pos + 8
        if info == 31:
            return _BREAK, pos
        raise DecodeError(f"unsupported simple value {info}")
    if info == 31 and major in (2, 3, 4, 5):
        return _indefinite(data, pos, major)
    n, pos = _length(data, pos, info)
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major == 2:
        return bytes(data[pos:pos + n]), pos + n
    if major == 3:
        return data[pos:pos + n].decode("utf-8"), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        doc = {}
        for _ in range(n):
            k, pos = _decode(data, pos)
            v, pos = _decode(data, pos)
            doc[k] = v
        return doc, pos
    # major 6: a tag; tag 1 (epoch timestamp) keeps its number
    value, pos = _decode(data, pos)
    return (Timestamp(value) if n == 1 and isinstance(value, (int, float)) else value), pos


def _indefinite(data, pos, major):
    if major in (2, 3):
        chunks = []
        while True:
            chunk, pos = _decode(data, pos)
            if chunk is _BREAK:
                break
            chunks.append(chunk)
        return (b"".join(chunks) if major == 2 else "".join(chunks)), pos
    if major == 4:
        items = []
        while True:
            item, pos = _decode(data, pos)
            if item is _BREAK:
                return items, pos
            items.append(item)
    doc = {}
    while True:
        k, pos = _decode(data, pos)
        if k is _BREAK:
            return doc, pos
        v, pos = _decode(data, pos)
        doc[k] = v
