#!/usr/bin/env bash
# tests/integration/crash.sh — nothing acknowledged is lost by kill -9.
#
# Several clients ingest all the time, over HTTP (curl loops) and through
# the FUSE mount (cp into <service>/<type>/[labels/]), while the server is
# killed with SIGKILL at random moments (CRASH_KILLS times, default 8;
# scripts/soak runs more) and restarted on the same data directory.  A
# client records an ingest only once it was acknowledged: HTTP 200 (with
# the returned metadata), or cp exiting 0 (with the source file).  At the end every acknowledged profile
# must be there with identical bytes and the same metadata, the SQLite
# file must pass PRAGMA integrity_check (right after a crash, and after a
# clean stop), and no client may have seen an error other than "server not
# there" (HTTP 000 / ENOTCONN while it was down).
#
# The bare mount point is immutable (chattr +i; or, where chattr does not
# work, a directory on a read-only tmpfs), so that a cp racing an unmount
# cannot land in the real directory and be counted as acknowledged.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

KILLS=${CRASH_KILLS:-8}
HTTP_CLIENTS=3
FUSE_CLIENTS=2
DATA=$T/data
MNT=$T/mnt
ACK=$T/ack
CLIENT_PIDS=()
mkdir -p "$ACK" "$MNT"

crash_cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    [ -n "${SERVER_PID:-}" ] && kill -KILL "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    unmount_stale
    chattr -i "$MNT" 2>/dev/null
    mountpoint -q "$T/ro" 2>/dev/null && umount -l "$T/ro"
    t_cleanup
}
trap crash_cleanup EXIT

if ! chattr +i "$MNT" 2>/dev/null; then
    mkdir -p "$T/ro"
    if mount -t tmpfs -o size=1m tmpfs "$T/ro" 2>/dev/null; then
        mkdir "$T/ro/mnt" && mount -o remount,ro "$T/ro"
        MNT=$T/ro/mnt
    else
        echo "crash: WARNING: cannot protect the bare mount point; a cp racing a restart could be miscounted"
    fi
fi

unmount_stale() {
    if mountpoint -q "$MNT" 2>/dev/null || grep -q " $MNT " /proc/mounts; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
}

# Every fixture that is a storable profile (mutex_000 has no samples).
FILES=()
for f in "$FIXTURES"/*.pb.gz; do [ "$(basename "$f")" = mutex_000.pb.gz ] || FILES+=("$f"); done
NFILES=${#FILES[@]}

# ---- clients ------------------------------------------------------------------

# fuse_client C: cp's fixtures of one type into the mount; on exit 0
# records "SOURCE<TAB>SERVICE<TAB>TYPE<TAB>LABELS".  Client 2 writes into
# a label directory.
fuse_client() {
    local c=$1 n=0 f type dir labels="" err
    [ "$c" = 2 ] && labels="client=f$c"
    while :; do
        f=${FILES[$(( (n * 5 + c) % NFILES ))]}
        type=$(basename "$f"); type=${type%%_*}
        dir="$MNT/crash-f$c/$type${labels:+/$labels}"
        if mountpoint -q "$MNT" && mkdir -p "$dir" 2>/dev/null; then
            if err=$(timeout 30 cp "$f" "$dir/up-$c-$n.pb.gz" 2>&1); then
                printf '%s\tcrash-f%s\t%s\t%s\n' "$f" "$c" "$type" "$labels" >> "$ACK/fuse.$c"
            else
                # Expected while the server is being killed: ENOTCONN, EIO
                # from an aborted connection, EPERM of the bare mount point.
                printf '%s\n' "$err" >> "$ACK/fuse-errors.$c"
            fi
        else
            sleep 0.05
        fi
        n=$((n + 1))
    done
}

# ---- server life cycle ----------------------------------------------------------

start() {
    start_server --mount "$MNT" --quiet || return 1
    echo "$URL" > "$T/url.tmp" && mv "$T/url.tmp" "$T/url"
}

crash() {
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
    unmount_stale
}

if ! start; then t_done; fi
mkdir -p "$MNT/crash-f1" "$MNT/crash-f2"  # services exist before the clients start

for ((c = 1; c <= HTTP_CLIENTS; c++)); do
    ack_http_client "$c" "crash-h$c" "$ACK/http-errors" & CLIENT_PIDS+=($!)
done
for ((c = 1; c <= FUSE_CLIENTS; c++)); do fuse_client "$c" & CLIENT_PIDS+=($!); done

t0=$(date +%s)
for ((k = 1; k <= KILLS; k++)); do
    # Up 0.4 .. 2.4 s, so that kills land during ingests, commits and
    # checkpoints alike.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.4 + (r % 200) / 100 }')"
    crash
    # Sometimes stay down a moment, so clients see refused connections too.
    [ $((RANDOM % 3)) = 0 ] && sleep 0.3
    if ! start; then break; fi
done
sleep 1
echo "crash: $KILLS kills in $(( $(date +%s) - t0 )) s"

for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
CLIENT_PIDS=()

# A last crash with nothing running, and an integrity check of the very
# image the kill left behind (on a copy: opening it runs WAL recovery).
crash
check "nothing was written into the bare mount point" [ -z "$(ls -A "$MNT" 2>&1)" ]
mkdir -p "$T/image"
cp -a "$DATA"/. "$T/image/"
DB=$(db_file)
if [ -n "$DB" ]; then
    assert_eq "integrity of the crash image" ok "$(db_integrity "$T/image/$(basename "$DB")")"
else
    fail "no SQLite database file in $DATA"
fi

start || t_done
nh=$(cat "$ACK"/http.* 2>/dev/null | wc -l)
nf=$(cat "$ACK"/fuse.[0-9]* 2>/dev/null | wc -l)
echo "crash: acknowledged $nh HTTP ingests, $nf FUSE copies"
check "HTTP clients got acknowledgements" [ "$nh" -ge $((KILLS * 2)) ]
check "FUSE clients got acknowledgements" [ "$nf" -ge "$KILLS" ]

if [ -s "$ACK/http-errors" ]; then
    fail "HTTP clients got unexpected statuses: $(sort "$ACK/http-errors" | cut -c1-300 | uniq -c | head -5)"
else
    ok
fi

# Everything acknowledged is there, byte for byte, with its metadata.
python3 "$TESTS_DIR/tools/ack_verify.py" "$URL" "$ACK" > "$T/verify.out" 2>&1
vrc=$?
cat "$T/verify.out"
check "every acknowledged profile intact after $KILLS kills" [ "$vrc" = 0 ]

stop_server TERM
DB=$(db_file)
[ -n "$DB" ] && assert_eq "integrity after clean stop" ok "$(db_integrity "$DB")"
t_done
