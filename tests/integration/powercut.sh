#!/usr/bin/env bash
# tests/integration/powercut.sh — nothing acknowledged is lost by a power
# cut (issue 13).  kill -9 keeps the page cache, so it never shows a
# missing fsync; this test runs the data directory on tests/tools/powercut.c,
# a FUSE passthrough that keeps what was not fsync'ed (data, new names,
# renames, removals) undoable and undoes all of it at the cut.
#
# Each round: powercut serves $PC/under at $PC/mnt; `profefs serve` runs on
# $PC/mnt/data with its own mount; HTTP clients (curl) and FUSE clients (cp
# into the mount) ingest all the time and record what was acknowledged
# (HTTP 200 with its metadata; cp exiting 0); at a random moment the power
# is cut; the server is killed, both mounts go away, and the database the
# cut left in $PC/under/data must pass PRAGMA integrity_check.  After
# POWERCUT_CUTS rounds (default 4; scripts/soak runs more) the server
# restarts on $PC/under/data itself and every acknowledged profile must be
# there, byte for byte, with its metadata (tests/tools/ack_verify.py).
# Prints the number of cuts and of acknowledged profiles checked.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

CUTS=${POWERCUT_CUTS:-4}
HTTP_CLIENTS=2
FUSE_CLIENTS=1
PC=$T/pc
MNT=$T/mnt
ACK=$T/ack
CLIENT_PIDS=()
PC_PID=""
POWERCUT=${POWERCUT:-$(dirname "$PROFEFS")/tests/powercut}
mkdir -p "$PC/under" "$PC/grave" "$PC/mnt" "$MNT" "$ACK"
[ -x "$POWERCUT" ] || { fail "no powercut tool at $POWERCUT"; t_done; }

pc_cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    [ -n "${SERVER_PID:-}" ] && kill -KILL "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    unmount "$MNT"
    unmount "$PC/mnt"
    [ -n "$PC_PID" ] && kill -KILL "$PC_PID" 2>/dev/null
    chattr -i "$MNT" 2>/dev/null
    t_cleanup
}
trap pc_cleanup EXIT

unmount() {
    if mountpoint -q "$1" 2>/dev/null || grep -q " $1 " /proc/mounts; then
        fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
    fi
}

# The bare mount point is immutable, so that a cp racing the unmount cannot
# land in the real directory and be counted as acknowledged.
chattr +i "$MNT" 2>/dev/null || { echo "powercut: chattr +i does not work here: skipped"; exit 77; }

FILES=()
for f in "$FIXTURES"/*.pb.gz; do [ "$(basename "$f")" = mutex_000.pb.gz ] || FILES+=("$f"); done
NFILES=${#FILES[@]}

# ---- clients (HTTP: ack_http_client of lib.sh; any answer but 200 is expected
# around a cut; every ingest has its own labels) ---------------------------------

fuse_client() {
    local c=$1 n=0 f type dir
    while :; do
        f=${FILES[$(( (n * 5 + c) % NFILES ))]}
        type=$(basename "$f"); type=${type%%_*}
        dir="$MNT/pc-f$c/$type/seq=$n"
        if mountpoint -q "$MNT" && mkdir -p "$dir" 2>/dev/null &&
           timeout 30 cp "$f" "$dir/up.pb.gz" 2>/dev/null; then
            printf '%s\tpc-f%s\t%s\tseq=%s\n' "$f" "$c" "$type" "$n" >> "$ACK/fuse.$c"
        else
            sleep 0.05
        fi
        n=$((n + 1))
    done
}

# ---- one round: power on, load, cut ------------------------------------------------

power_on() {
    "$POWERCUT" "$PC/under" "$PC/grave" "$PC/mnt" 2>>"$T/powercut.log" &
    PC_PID=$!
    wait_mount "$PC/mnt" 10 || { fail "powercut did not mount"; cat "$T/powercut.log" >&2; return 1; }
    DATA=$PC/mnt/data start_server --mount "$MNT" --quiet || return 1
    echo "$URL" > "$T/url.tmp" && mv "$T/url.tmp" "$T/url"
}

cut() {
    { : > "$PC/mnt/.powercut"; } 2>/dev/null  # fails with EIO: the power is gone
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
    unmount "$MNT"
    unmount "$PC/mnt"
    wait "$PC_PID" 2>/dev/null
    PC_PID=""
}

# The tool itself: what was not fsync'ed is gone after a cut, what was
# (data by fsync, the name by fsync of its directory) stays.
"$POWERCUT" "$PC/under" "$PC/grave" "$PC/mnt" 2>>"$T/powercut.log" &
PC_PID=$!
wait_mount "$PC/mnt" 10 || { fail "powercut did not mount"; t_done; }
python3 - "$PC/mnt" <<'PY'
import os, sys
m = sys.argv[1]
def put(name, data, sync):
    fd = os.open(os.path.join(m, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    if sync: os.fsync(fd)
    os.close(fd)
put("kept", b"durable", True)
d = os.open(m, os.O_RDONLY); os.fsync(d); os.close(d)
put("kept", b"VOLATILE", False)                # data not synced
put("unnamed", b"synced, name not", True)      # name not synced
os.rename(os.path.join(m, "kept"), os.path.join(m, "moved"))
PY
{ : > "$PC/mnt/.powercut"; } 2>/dev/null
unmount "$PC/mnt"; wait "$PC_PID"; PC_PID=""
assert_eq "tool: after a cut only synced data under synced names" "kept:durable" \
    "$(cd "$PC/under" && for f in *; do printf '%s:%s' "$f" "$(cat "$f")"; done)"
rm -f "$PC/under/kept"

T_LOGS+=("$T/powercut.log")
power_on || t_done
mkdir -p "$MNT/pc-f1"  # the service exists before the clients start
for ((c = 1; c <= HTTP_CLIENTS; c++)); do ack_http_client "$c" "pc-h$c" & CLIENT_PIDS+=($!); done
for ((c = 1; c <= FUSE_CLIENTS; c++)); do fuse_client "$c" & CLIENT_PIDS+=($!); done

t0=$(date +%s)
bad_images=0
for ((k = 1; k <= CUTS; k++)); do
    # 0.5 .. 3 s of load: cuts land in ingests, commits and checkpoints
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + (r % 250) / 100 }')"
    cut
    # the image the cut left (on a copy: opening it runs WAL recovery)
    rm -rf "$T/image" && mkdir -p "$T/image" && cp -a "$PC/under/data/." "$T/image/"
    DB=$(db_file "$T/image")
    integ=$([ -n "$DB" ] && db_integrity "$DB" || echo "no database")
    [ "$integ" = ok ] || { bad_images=$((bad_images + 1)); echo "powercut: cut $k: integrity: $integ" >&2; }
    [ "$k" -lt "$CUTS" ] && { power_on || break; }
done
echo "powercut: $CUTS cuts in $(( $(date +%s) - t0 )) s; $(grep -c '^powercut: cut:' "$T/powercut.log") reported by the tool"
assert_eq "integrity_check of every image a cut left" 0 "$bad_images"
for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
CLIENT_PIDS=()

# Restart on the underlying directory: what reached the disk.
DATA=$PC/under/data start_server --quiet || t_done
nh=$(cat "$ACK"/http.* 2>/dev/null | wc -l)
nf=$(cat "$ACK"/fuse.[0-9]* 2>/dev/null | wc -l)
check "HTTP clients got acknowledgements ($nh)" [ "$nh" -ge "$CUTS" ]
check "FUSE clients got acknowledgements ($nf)" [ "$nf" -ge 1 ]
python3 "$TESTS_DIR/tools/ack_verify.py" "$URL" "$ACK" > "$T/verify.out" 2>&1
vrc=$?
cat "$T/verify.out"
echo "powercut: $CUTS cuts, $((nh + nf)) acknowledged profiles checked ($nh HTTP, $nf FUSE)"
check "every acknowledged profile intact after $CUTS power cuts" [ "$vrc" = 0 ]
stop_server TERM
DB=$(db_file "$PC/under/data")
[ -n "$DB" ] && assert_eq "integrity after the restart and a clean stop" ok "$(db_integrity "$DB")"
t_done
