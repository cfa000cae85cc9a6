#!/usr/bin/env python3
"""ack_verify.py BASE_URL ACK_DIR — checks that every acknowledged ingest
recorded by a crash-style test (tests/integration/crash.sh, powercut.sh) is
in the server at BASE_URL, byte for byte and with its metadata.

ACK_DIR holds:
  http.*  one line per HTTP 200: "SOURCE<TAB>JSON answer" (by id: bytes,
          service, type, labels, created_at as acknowledged);
  fuse.*  one line per cp that exited 0 into the mount:
          "SOURCE<TAB>SERVICE<TAB>TYPE<TAB>LABELS" (no ids: per series, at
          least as many stored copies of each source as acknowledged).
Prints "verified N HTTP and M FUSE acknowledgements" and one line per
problem; exits 1 when anything acknowledged is missing or differs.
"""
import glob, hashlib, json, os, sys
from profefe_api import get, find
base, ack = sys.argv[1], sys.argv[2]
bad = []

def listing(service, ptype):
    st, body = find(base, service, ptype)
    if st == 404:
        return []
    if st != 200:
        bad.append("list %s/%s: HTTP %d %r" % (service, ptype, st, body[:200]))
        return []
    return json.loads(body)["body"]

def labels_of(meta):
    return {l["key"]: l["value"] for l in (meta.get("labels") or [])}

# HTTP: by id, bytes and metadata as acknowledged.
listings = {}
n_http = 0
for path in sorted(glob.glob(os.path.join(ack, "http.*"))):
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        if not line:
            continue
        src, _, body = line.partition("\t")
        try:
            meta = json.loads(body)["body"]
        except Exception:
            if i == len(lines) - 2:   # last line cut by the client's kill
                continue
            bad.append("unparsable acknowledgement %r" % line[:200])
            continue
        n_http += 1
        st, data = get(base, "/api/0/profiles/" + meta["id"])
        if st != 200:
            bad.append("acknowledged %s (%s) lost: HTTP %d" % (meta["id"], src, st))
            continue
        if data != open(src, "rb").read():
            bad.append("acknowledged %s differs from %s" % (meta["id"], src))
        key = (meta["service"], meta["type"])
        if key not in listings:
            listings[key] = {m["id"]: m for m in listing(*key)}
        found = listings[key].get(meta["id"])
        if found is None:
            bad.append("acknowledged %s missing from the list of %s/%s" % ((meta["id"],) + key))
        elif (labels_of(found) != labels_of(meta) or found["created_at"] != meta["created_at"]
              or found["service"] != meta["service"] or found["type"] != meta["type"]):
            bad.append("metadata of %s changed: %r -> %r" % (meta["id"], meta, found))

# FUSE: no ids, so per (service, type, labels) the stored profiles must
# hold each source that was acknowledged: ingest is idempotent, so copies
# of one source (same bytes, labels and created_at) are one profile.
want, n_fuse = {}, 0
for path in sorted(glob.glob(os.path.join(ack, "fuse.[0-9]*"))):
    for line in open(path).read().split("\n"):
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        src, service, ptype, labels = parts
        n_fuse += 1
        h = hashlib.sha256(open(src, "rb").read()).hexdigest()
        k = (service, ptype, labels)
        want.setdefault(k, {}).setdefault(h, [0, src])[0] += 1
# Profiles listed with labels nobody acknowledged for the series are ones
# whose acknowledgement never came (the client or server died first): fine.
stored = {}  # (service, type) -> {labels (sorted k=v) -> {sha256 -> count}}
def stored_of(service, ptype):
    if (service, ptype) not in stored:
        by = {}
        for m in listing(service, ptype):
            st, data = get(base, "/api/0/profiles/" + m["id"])
            if st != 200:
                bad.append("listed %s cannot be read: HTTP %d" % (m["id"], st))
                continue
            key = ",".join("%s=%s" % kv for kv in sorted(labels_of(m).items()))
            h = hashlib.sha256(data).hexdigest()
            by.setdefault(key, {})[h] = by.get(key, {}).get(h, 0) + 1
        stored[(service, ptype)] = by
    return stored[(service, ptype)]

for (service, ptype, labels), hashes in sorted(want.items()):
    key = ",".join(sorted(labels.split(","))) if labels else ""
    have = stored_of(service, ptype).get(key, {})
    for h, (count, src) in hashes.items():
        if have.get(h, 0) < 1:
            bad.append("%s/%s [%s]: %d acknowledged copies of %s, none stored"
                       % (service, ptype, labels, count, src))

print("verified %d HTTP and %d FUSE acknowledgements" % (n_http, n_fuse))
for b in bad[:30]:
    print("LOST/BAD:", b)
if len(bad) > 30:
    print("... and %d more" % (len(bad) - 30))
sys.exit(1 if bad else 0)
