#!/usr/bin/env bash
# tests/integration/powercut.sh — nothing acknowledged is lost by a power
# cut (issue 13).  kill -9 keeps the page cache, so it never shows a
# missing fsync; this test runs the data directory on tests/tools/powercut.c,
# a FUSE passthrough that keeps what was not fsync'ed (data, new names,
# renames, removals) undoable and undoes all of it at the cut.
#
# Each round: powercut serves $PC/under at $PC/mnt; `profefs serve` runs on
# $PC/mnt/data with its own mount; HTTP clients (curl) and FUSE clients
# ingest all the time and record what was acknowledged (HTTP 200 with its
# metadata; the FUSE client's last close returning 0).  The FUSE client
# takes turns at four ways of writing: cp; append (O_APPEND, a dup'ed
# descriptor closed after the first half, whose ingest of a prefix fails,
# then the rest: the shell's `{ a; b; } >> f`); rewrite (another profile
# written and fsync'ed, then truncated and replaced by the acknowledged
# one on the same descriptor, which deletes the first); and rename (written
# under a temporary name, then renamed, as rsync and editors do).  At a
# random moment the power is cut; the server is killed, both mounts go
# away, and the database the cut left in $PC/under/data must pass PRAGMA
# integrity_check.  After POWERCUT_CUTS rounds (default 4; scripts/soak
# runs more) the server restarts on $PC/under/data itself and every
# acknowledged profile must be there, byte for byte, with its metadata
# (tests/tools/ack_verify.py).  Prints the number of cuts that really
# happened (the tool reports each) and of acknowledged profiles checked,
# and requires every cut, profiles acknowledged over HTTP and over the
# mount in every round (a round waits for them, up to 30 s), and each of
# the four FUSE writes.
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

# mntop.py OP SRC OTHER DIR: writes SRC into DIR/up.pb.gz by way of OP
# (append, rewrite, rename; see the top); exits 0 when the write was
# acknowledged, that is when its last close (and the rename) returned 0.
cat >"$T/mntop.py" <<'PY'
import os, sys
op, src, other, d = sys.argv[1:5]
data, path = open(src, "rb").read(), os.path.join(d, "up.pb.gz")
if op == "append":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, data[:len(data) // 2])
    try:
        os.close(os.dup(fd))       # a prefix: its ingest fails (EINVAL)
    except OSError:
        pass
    os.write(fd, data[len(data) // 2:])
    os.close(fd)
elif op == "rewrite":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, open(other, "rb").read())
    os.fsync(fd)                   # the other profile, durable
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.close(fd)                   # replaced by this one
elif op == "rename":
    tmp = os.path.join(d, ".up.pb.gz.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
    os.rename(tmp, path)
PY
FUSE_OPS=(cp append rewrite rename)

# The kind of write moves on only once one was acknowledged, so that every
# kind is among the first four acknowledgements (one per round at least).
fuse_client() {
    local c=$1 n=0 acked=0 f g type dir op ok
    while :; do
        f=${FILES[$(( (n * 5 + c) % NFILES ))]}
        type=$(basename "$f"); type=${type%%_*}
        g=$(ls "$FIXTURES/${type}"_*.pb.gz | grep -v "^$f\$" | head -n 1)
        dir="$MNT/pc-f$c/$type/seq=$n"
        op=${FUSE_OPS[$(( acked % ${#FUSE_OPS[@]} ))]}
        ok=0
        if mountpoint -q "$MNT" && mkdir -p "$dir" 2>/dev/null; then
            if [ "$op" = cp ]; then
                timeout 30 cp "$f" "$dir/up.pb.gz" 2>/dev/null && ok=1
            else
                timeout 30 python3 "$T/mntop.py" "$op" "$f" "$g" "$dir" 2>/dev/null && ok=1
            fi
        fi
        if [ "$ok" = 1 ]; then
            printf '%s\tpc-f%s\t%s\tseq=%s\n' "$f" "$c" "$type" "$n" >> "$ACK/fuse.$c"
            echo "$op" >> "$ACK/ops.$c"
            acked=$((acked + 1))
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

# cut: cuts the power, stops everything; counts the cut in REAL_CUTS when
# the tool reported it (a cut that did not happen checks nothing).
REAL_CUTS=0
tool_cuts() { grep -c '^powercut: cut:' "$T/powercut.log"; }
cut() {
    local before
    before=$(tool_cuts)
    { : > "$PC/mnt/.powercut"; } 2>/dev/null  # fails with EIO: the power is gone
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
    unmount "$MNT"
    unmount "$PC/mnt"
    wait "$PC_PID" 2>/dev/null
    PC_PID=""
    [ "$(tool_cuts)" -gt "$before" ] && REAL_CUTS=$((REAL_CUTS + 1))
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
acks() { cat "$@" 2>/dev/null | wc -l; }
for ((k = 1; k <= CUTS; k++)); do
    # Every round has something acknowledged over HTTP and over the mount
    # (however loaded the machine), then 0.5 .. 3 s more of load: cuts land
    # in ingests, commits and checkpoints.
    h0=$(acks "$ACK"/http.*); f0=$(acks "$ACK"/fuse.[0-9]*)
    for ((w = 0; w < 300; w++)); do
        [ "$(acks "$ACK"/http.*)" -gt "$h0" ] && [ "$(acks "$ACK"/fuse.[0-9]*)" -gt "$f0" ] && break
        sleep 0.1
    done
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + (r % 250) / 100 }')"
    cut
    # the image the cut left (on a copy: opening it runs WAL recovery)
    rm -rf "$T/image" && mkdir -p "$T/image" && cp -a "$PC/under/data/." "$T/image/"
    DB=$(db_file "$T/image")
    integ=$([ -n "$DB" ] && db_integrity "$DB" || echo "no database")
    [ "$integ" = ok ] || { bad_images=$((bad_images + 1)); echo "powercut: cut $k: integrity: $integ" >&2; }
    [ "$k" -lt "$CUTS" ] && { power_on || break; }
done
echo "powercut: $REAL_CUTS cuts really happened (of $CUTS) in $(( $(date +%s) - t0 )) s"
assert_eq "every cut happened (the tool reported it)" "$CUTS" "$REAL_CUTS"
assert_eq "integrity_check of every image a cut left" 0 "$bad_images"
for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
CLIENT_PIDS=()

# Restart on the underlying directory: what reached the disk.
DATA=$PC/under/data start_server --quiet || t_done
nh=$(cat "$ACK"/http.* 2>/dev/null | wc -l)
nf=$(cat "$ACK"/fuse.[0-9]* 2>/dev/null | wc -l)
check "HTTP clients got acknowledgements in every round ($nh)" [ "$nh" -ge "$CUTS" ]
check "FUSE clients got acknowledgements in every round ($nf)" [ "$nf" -ge "$CUTS" ]
kinds=""
for op in "${FUSE_OPS[@]}"; do
    k=$(cat "$ACK"/ops.* 2>/dev/null | grep -cx "$op")
    kinds="$kinds $op=$k"
    check "FUSE writes by $op were acknowledged ($k)" [ "$k" -ge 1 ]
done
python3 "$TESTS_DIR/tools/ack_verify.py" "$URL" "$ACK" > "$T/verify.out" 2>&1
vrc=$?
cat "$T/verify.out"
echo "powercut: $REAL_CUTS cuts, $((nh + nf)) acknowledged profiles checked ($nh HTTP, $nf FUSE:$kinds)"
check "every acknowledged profile intact after $CUTS power cuts" [ "$vrc" = 0 ]
stop_server TERM
DB=$(db_file "$PC/under/data")
[ -n "$DB" ] && assert_eq "integrity after the restart and a clean stop" ok "$(db_integrity "$DB")"
t_done
