#!/usr/bin/env python3
"""pyroscope_push.py — a PushRequest of Pyroscope's Connect push API
(push.v1.PusherService/Push), as its SDKs and Grafana Alloy send it.

Usage: pyroscope_push.py proto|json OUT LABELS FILE [FILE...]
   LABELS: name=value,name=value (one series; each FILE a raw sample)

The protobuf is encoded by hand from the published field numbers
(PushRequest.series = 1; RawProfileSeries.labels = 1, samples = 2;
types.v1.LabelPair name = 1, value = 2; RawSample raw_profile = 1,
ID = 2), independently of the server's own push.proto; the JSON follows
proto3's JSON mapping (camelCase names, bytes as base64).
Python 3 standard library only.
"""
import base64
import json
import sys
import uuid


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, data):
    """A length-delimited field (wire type 2)."""
    return varint(num << 3 | 2) + varint(len(data)) + data


def main():
    enc, out, labels, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    pairs = [p.split("=", 1) for p in labels.split(",") if p]
    samples = [(open(f, "rb").read(), str(uuid.uuid4())) for f in files]
    if enc == "json":
        body = json.dumps({"series": [{
            "labels": [{"name": k, "value": v} for k, v in pairs],
            "samples": [{"rawProfile": base64.b64encode(d).decode(), "ID": i}
                        for d, i in samples]}]}).encode()
    else:
        series = b"".join(field(1, field(1, k.encode()) + field(2, v.encode()))
                          for k, v in pairs)
        series += b"".join(field(2, field(1, d) + field(2, i.encode()))
                           for d, i in samples)
        body = field(1, series)
    open(out, "wb").write(body)


main()
