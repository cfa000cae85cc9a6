#!/usr/bin/env bash
# tests/integration/faults_batch.sh — a full disk in the middle of a group
# commit (issue 13).  Big profiles (3 MB of strings: their insert spills
# SQLite's page cache into the WAL, so the disk fills inside a statement,
# where SQLite may roll the whole transaction back) are ingested in
# parallel with small ones on a nearly full 24 MB tmpfs.  Every answer must
# be 200 or 507 "no space" — never a 500 (batch-mates of the request that
# hit the full disk used to get "cannot commit: no such savepoint") — every
# 200 must read back identical, and once space is back, ingests work and
# the database passes PRAGMA integrity_check.  Needs root (mount).
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

SMALL=$T/small
DATA=$SMALL/data
fb_cleanup() {
    [ -n "${SERVER_PID:-}" ] && kill -KILL "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    mountpoint -q "$SMALL" 2>/dev/null && umount -l "$SMALL"
    t_cleanup
}
trap fb_cleanup EXIT
mkdir -p "$SMALL"
mount -t tmpfs -o size=24m tmpfs "$SMALL" 2>/dev/null || { echo "faults_batch: needs root: skipped"; exit 77; }

# Big valid profiles: one sample, and a string table of random strings.
mkdir -p "$T/in"
python3 - "$T/in" <<'PY'
import base64, gzip, os, sys
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F; v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v: return bytes(out)
def field(n, data): return varint(n << 3 | 2) + varint(len(data)) + data
def vint(n, v): return varint(n << 3) + varint(v)
for k in range(4):
    strings = [b"", b"samples", b"count"] + [base64.b64encode(os.urandom(750)) for _ in range(4000)]
    p = field(1, vint(1, 1) + vint(2, 2))                       # sample_type
    p += field(2, field(1, varint(1)) + field(2, varint(1)))    # sample [loc 1] = 1
    p += field(4, vint(1, 1))                                   # location id 1
    p += b"".join(field(6, s) for s in strings)                 # string_table
    open(os.path.join(sys.argv[1], "big%d.pb.gz" % k), "wb").write(gzip.compress(p, 1))
PY
start_server --quiet || t_done

# Leave about 2 MB: less than one big profile.
avail=$(df -B1 --output=avail "$SMALL" | tail -1)
fallocate -l $(( avail - (2 << 20) )) "$SMALL/filler" 2>/dev/null ||
    head -c $(( avail - (2 << 20) )) /dev/zero > "$SMALL/filler"

# post N FILE SERVICE: answer status and body into $T/r/N.{code,body}.
mkdir -p "$T/r"
post() {
    curl -s -o "$T/r/$1.body" -w '%{http_code}' --max-time 60 --data-binary @"$2" \
        "$URL/api/0/profiles?service=$3&type=other&labels=n%3D$1" >"$T/r/$1.code"
    echo "$2" >"$T/r/$1.src"
}
for round in 1 2 3 4; do
    pids=()
    for k in 0 1 2 3; do post "b$round$k" "$T/in/big$k.pb.gz" big & pids+=($!); done
    for k in $(seq 1 12); do
        post "s$round$k" "$FIXTURES/cpu_0$(printf %02d $((k % 15))).pb.gz" small & pids+=($!)
    done
    wait "${pids[@]}"
done
n200=0 n507=0 other=0
for f in "$T"/r/*.code; do
    case $(cat "$f") in
        200) n200=$((n200 + 1)) ;;
        507) n507=$((n507 + 1)) ;;
        *) other=$((other + 1)); echo "faults_batch: $(basename "$f" .code): HTTP $(cat "$f"): $(cat "${f%.code}.body")" >&2 ;;
    esac
done
echo "faults_batch: $n200 x 200, $n507 x 507, $other other"
assert_eq "every answer on a full disk is 200 or 507" 0 "$other"
check "the disk filled ($n507 x 507)" [ "$n507" -gt 0 ]
bad=0
for f in "$T"/r/*.code; do
    [ "$(cat "$f")" = 200 ] || continue
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"]["id"])' "${f%.code}.body")
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    cmp -s "$T/back" "$(cat "${f%.code}.src")" || { bad=$((bad + 1)); echo "faults_batch: $id differs" >&2; }
done
assert_eq "every 200 reads back identical ($n200)" 0 "$bad"

rm -f "$SMALL/filler"
id=$(ingest "$FIXTURES/cpu_001.pb.gz" after cpu)
check "ingest once space is back ($id)" [ ${#id} = 20 ]
stop_server TERM
assert_eq "integrity after the full disk" ok "$(db_integrity "$(db_file)")"
t_done
