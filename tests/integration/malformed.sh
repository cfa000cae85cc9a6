#!/usr/bin/env bash
# malformed.sh — `profefs merge` on bad input exits 1 with one exact line
# on stderr and writes nothing: truncated gzip, garbage, a protobuf with an
# out-of-range string index, mismatched profile types (cpu + heap), a zip
# bomb over --max-inflate; a profile without samples is merged, not refused.
. "$TESTS_DIR/lib.sh"
t_init

# expect_fail NAME MESSAGE ARGS...: profefs merge ARGS fails as described.
expect_fail() {
    local name=$1 msg=$2 rc; shift 2
    "$PROFEFS" merge "$@" >"$T/$name.out" 2>"$T/$name.err"; rc=$?
    assert_eq "$name: exit status" 1 "$rc"
    assert_eq "$name: message" "$msg" "$(cat "$T/$name.err")"
    assert_eq "$name: nothing written" 0 "$(stat -c %s "$T/$name.out")"
}

good="$FIXTURES/cpu_001.pb.gz"

head -c 1000 "$FIXTURES/cpu_000.pb.gz" >"$T/truncated.pb.gz"
expect_fail truncated \
    "profefs merge: $T/truncated.pb.gz: malformed profile (gzip: corrupt or truncated stream)" \
    "$good" "$T/truncated.pb.gz"

printf 'this is not a profile\n' >"$T/garbage.pb"
expect_fail garbage \
    "profefs merge: $T/garbage.pb: malformed profile (Profile field 14 at offset 0: unexpected wire type 4)" \
    "$T/garbage.pb" "$good"

# A Function (field 5) {id 1, name 99} and a string table with only "".
printf '\x2a\x04\x08\x01\x10\x63\x32\x00' >"$T/badindex.pb"
expect_fail badindex \
    "profefs merge: $T/badindex.pb: malformed profile (string index 99 out of range in function.name (table has 1 strings))" \
    "$T/badindex.pb"

expect_fail mismatch \
    "profefs merge: $FIXTURES/heap_000.pb.gz: sample types [samples/count cpu/nanoseconds] and [alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes] differ" \
    "$FIXTURES/cpu_000.pb.gz" "$FIXTURES/heap_000.pb.gz"

head -c $((64 << 20)) /dev/zero | gzip -c >"$T/bomb.gz"
expect_fail zipbomb \
    "profefs merge: $T/bomb.gz: malformed profile (inflated size over the limit of 1048576 bytes)" \
    --max-inflate 1M "$good" "$T/bomb.gz"

expect_fail missing \
    "profefs merge: $T/nonexistent.pb.gz: No such file or directory" \
    "$good" "$T/nonexistent.pb.gz"

# The two profiles of tests/fuzz/regress/pprof_merge/stale-ids (a 4-byte
# length, A, B): B names location id 70 that only A defines, so B is
# refused after A as it is alone (issue 13).
python3 - "$TESTS_DIR/fuzz/regress/pprof_merge/stale-ids" "$T" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", d[:4])[0]
open(sys.argv[2] + "/stale_a.pb.gz", "wb").write(d[4:4 + n])
open(sys.argv[2] + "/stale_b.pb.gz", "wb").write(d[4 + n:])
PY
expect_fail stale_ids \
    "profefs merge: $T/stale_b.pb.gz: malformed profile (sample 0: unknown location id 70)" \
    "$T/stale_a.pb.gz" "$T/stale_b.pb.gz"

# mutex_000 has no samples: still a valid profile to merge.
"$PROFEFS" merge "$FIXTURES/mutex_000.pb.gz" "$FIXTURES/mutex_005.pb.gz" \
    >"$T/mutex.pb.gz" 2>"$T/mutex.err"
assert_eq "profile without samples is merged" "0:" "$?:$(cat "$T/mutex.err")"
check "merged mutex profile is not empty" test -s "$T/mutex.pb.gz"

t_done
