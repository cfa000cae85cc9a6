#!/usr/bin/env bash
# tests/integration/faults.sh — disk full, read-only and missing data
# directories.
#
# Disk full: the data directory lives on an 8 MB tmpfs.  Once a filler file
# has taken the rest of it, an HTTP ingest must get 507 with a JSON error
# saying the disk is full, and a cp into the mount must fail with ENOSPC;
# the profiles acknowledged before stay readable and identical; when the
# filler is deleted, ingests (HTTP and cp) work again without a restart;
# after a clean stop the database passes PRAGMA integrity_check.  The 507's
# text names no server path (the log has the details).
# Start-up errors: a data directory on a read-only file system, a data
# directory whose parent does not exist, and one that is a regular file
# each make `profefs serve` exit non-zero at once with a message naming it.
# Needs root (mount); skipped otherwise.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

SMALL=$T/small
MNT=$T/mnt
DATA=$SMALL/data

faults_cleanup() {
    [ -n "${SERVER_PID:-}" ] && kill -KILL "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; }
    mountpoint -q "$SMALL" 2>/dev/null && umount -l "$SMALL"
    t_cleanup
}
trap faults_cleanup EXIT

mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=8m tmpfs "$SMALL" 2>/dev/null; then
    echo "faults: cannot mount a tmpfs (needs root): skipped"
    exit 77
fi
mkdir -p "$DATA"

# expect_start_error DESC DIR: serve --data DIR exits non-zero within 20 s
# with a message that names DIR.
expect_start_error() {
    local desc=$1 dir=$2 rc out
    out=$(timeout 20 "$PROFEFS" serve --data "$dir" --addr "127.0.0.1:$(free_port)" 2>&1 </dev/null)
    rc=$?
    check "$desc: exits non-zero at start (rc $rc)" [ "$rc" != 0 ] && [ "$rc" != 124 ]
    assert_contains "$desc: message names the directory" "$out" "$dir"
    check "$desc: no sanitizer report" sanitizer_clean <(printf '%s' "$out")
    echo "faults: $desc -> $(printf '%s' "$out" | head -n 2 | tr '\n' ' ')"
}

# ---- disk full ------------------------------------------------------------------------
start_server --mount "$MNT" --quiet || t_done
declare -A KEPT
for f in "$FIXTURES"/cpu_00[0-4].pb.gz "$FIXTURES"/heap_000.pb.gz; do
    t=$(basename "$f"); t=${t%%_*}
    id=$(ingest "$f" faults "$t" "phase=before")
    [ ${#id} = 20 ] && KEPT[$id]=$f
done
assert_eq "profiles acknowledged before the disk fills" 6 "${#KEPT[@]}"
mkdir -p "$MNT/faults/cpu"
check "cp into the mount works before" cp "$FIXTURES/cpu_005.pb.gz" "$MNT/faults/cpu/before.pb.gz"

# Fill the tmpfs to the last block.
dd if=/dev/zero of="$SMALL/filler" bs=64k 2>/dev/null
dd if=/dev/zero of="$SMALL/filler2" bs=1 2>/dev/null
echo "faults: free after filling: $(df -B1 --output=avail "$SMALL" | tail -1) bytes"

# Some ingests may still fit in pages SQLite already has; keep going until
# one is refused, which must happen within a few dozen.
got=""
for ((i = 0; i < 50; i++)); do
    http POST "$URL/api/0/profiles?service=faults&type=cpu&labels=phase%3Dfull,n%3D$i" \
        --data-binary @"$FIXTURES/cpu_006.pb.gz"
    [ "$HTTP_STATUS" = 200 ] && { KEPT[$(json 'j["body"]["id"]')]=$FIXTURES/cpu_006.pb.gz; continue; }
    got=$HTTP_STATUS
    break
done
assert_eq "HTTP ingest on a full disk" 507 "$got"
if [ "$got" = 507 ]; then
    check "507 reply is JSON {code:507, error}" python3 -c "
import json; j = json.load(open('$T/body')); assert j['code'] == 507 and j['error']"
    err=$(json 'j.get("error", "")' 2>/dev/null)
    case "${err,,}" in *space*|*full*) ok ;; *) fail "507 error text does not say the disk is full: [$err]" ;; esac
    # The server's paths stay in its log (issue 13).
    case "$err" in *"$T"*|*profefs.db*) fail "507 error text names a server path: [$err]" ;; *) ok ;; esac
    check "the server's log has the reason with the path" grep -q "httpd: 507: .*$SMALL" "$SERVER_LOG"
    echo "faults: 507 error text: $err"
fi
cerr=$(cp "$FIXTURES/cpu_007.pb.gz" "$MNT/faults/cpu/full.pb.gz" 2>&1); crc=$?
check "cp on a full disk fails" [ "$crc" != 0 ]
assert_contains "cp on a full disk: ENOSPC" "$cerr" "No space left on device"
echo "faults: cp on a full disk -> $cerr"

# Reads still work, and what was acknowledged is intact.
for id in "${!KEPT[@]}"; do
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "acknowledged $id intact while the disk is full" cmp -s "$T/back" "${KEPT[$id]}"
done
http GET "$URL/api/0/profiles?service=faults&type=cpu&from=1970-01-02T00:00:00&to=2199-01-01T00:00:00"
assert_eq "listing while the disk is full" 200 "$HTTP_STATUS"
check "server alive on a full disk" kill -0 "$SERVER_PID"

# Space comes back: no restart needed.
rm -f "$SMALL/filler" "$SMALL/filler2"
id=$(ingest "$FIXTURES/cpu_008.pb.gz" faults cpu "phase=after")
check "HTTP ingest works once space is back ($id)" [ ${#id} = 20 ]
[ ${#id} = 20 ] && KEPT[$id]=$FIXTURES/cpu_008.pb.gz
check "cp works once space is back" cp "$FIXTURES/cpu_009.pb.gz" "$MNT/faults/cpu/after.pb.gz"
n=$(find "$MNT/faults/cpu" -name '*.pb.gz' | wc -l)   # each profile in the directory of its labels
assert_eq "stored cpu profiles (5 + 1 by cp before + full-disk extras + 1 + 1 by cp after)" \
    $(( ${#KEPT[@]} - 1 + 2 )) "$n"
for id in "${!KEPT[@]}"; do
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "acknowledged $id intact after recovery" cmp -s "$T/back" "${KEPT[$id]}"
done
stop_server TERM
DB=$(db_file)
check "database file found in $DATA" [ -n "$DB" ]
[ -n "$DB" ] && assert_eq "integrity after disk full" ok "$(db_integrity "$DB")"

# Restart on the same data: everything still there.
start_server --quiet || t_done
for id in "${!KEPT[@]}"; do
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "acknowledged $id intact after restart" cmp -s "$T/back" "${KEPT[$id]}"
done
stop_server TERM

# ---- filling up gradually, then kill -9 while full ------------------------------------
# This time the disk runs out in the middle of the WAL's growth: leave
# ~300 KB free and ingest until refused; then SIGKILL the server while the
# disk is still full, free space and restart.
start_server --quiet || t_done
avail=$(df -B1 --output=avail "$SMALL" | tail -1)
fallocate -l $(( avail - 300 * 1024 )) "$SMALL/filler" 2>/dev/null ||
    head -c $(( avail - 300 * 1024 )) /dev/zero > "$SMALL/filler"
got="" n_ok=0
for ((i = 0; i < 400; i++)); do
    f=${FIXTURES}/heap_0$(( i % 2 ))0.pb.gz
    # n=i: distinct profiles (ingest is idempotent), so the disk does fill
    http POST "$URL/api/0/profiles?service=faults&type=heap&labels=phase%3Dgradual,n%3D$i" --data-binary @"$f"
    if [ "$HTTP_STATUS" = 200 ]; then
        KEPT[$(json 'j["body"]["id"]')]=$f; n_ok=$((n_ok + 1)); continue
    fi
    got=$HTTP_STATUS
    break
done
echo "faults: gradual fill: $n_ok ingests acknowledged, then HTTP $got"
assert_eq "HTTP ingest when the disk fills up" 507 "$got"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
# Restarting on the still full disk must not lose or corrupt anything
# either (WAL recovery needs no new space).
start_server --quiet || t_done
for id in "${!KEPT[@]}"; do
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "acknowledged $id intact after kill -9 on a full disk" cmp -s "$T/back" "${KEPT[$id]}"
done
stop_server TERM
rm -f "$SMALL/filler"
start_server --quiet || t_done
id=$(ingest "$FIXTURES/heap_005.pb.gz" faults heap "phase=final")
check "ingest after the full-disk crash ($id)" [ ${#id} = 20 ]
stop_server TERM
assert_eq "integrity after kill -9 on a full disk" ok "$(db_integrity "$DB")"

# ---- start-up errors ---------------------------------------------------------------------
# A read-only file system: an existing store, and an empty directory.
mkdir -p "$SMALL/empty"
mount -o remount,ro "$SMALL"
expect_start_error "existing store on a read-only file system" "$DATA"
expect_start_error "empty directory on a read-only file system" "$SMALL/empty"
expect_start_error "missing directory on a read-only file system" "$SMALL/new"
mount -o remount,rw "$SMALL"

expect_start_error "missing parent directory" "$T/no/such/parent/data"
check "missing parent not created" [ ! -e "$T/no" ]
touch "$T/plainfile"
expect_start_error "data path is a regular file" "$T/plainfile"
t_done
