#!/usr/bin/env python3
"""pprof_retime.py — rewrite a pprof profile's time_nanos (field 9).

    pprof_retime.py IN OUT UNIX_SECONDS      (0 removes the field)

Tests and benchmarks use it to make copies of a fixture with known,
distinct created_at values (profefs takes created_at from time_nanos).
Only the top-level field 9 is touched; everything else is copied byte for
byte. Input may be gzip or plain; output is gzip. Python stdlib only.
"""
import gzip
import sys


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def put_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def retime(data, seconds):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out = bytearray()
    i = 0
    while i < len(data):
        start = i
        key, i = varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = varint(data, i)
            i += n
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        if field != 9:
            out += data[start:i]
    if seconds:
        out += put_varint(9 << 3) + put_varint(seconds * 1_000_000_000)
    return gzip.compress(bytes(out), mtime=0)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    with open(sys.argv[2], "wb") as f:
        f.write(retime(data, int(sys.argv[3])))


if __name__ == "__main__":
    main()
