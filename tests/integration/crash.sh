#!/usr/bin/env bash
# tests/integration/crash.sh — nothing acknowledged is lost by kill -9.
#
# Several clients ingest all the time, over HTTP (curl loops) and through
# the FUSE mount (cp into <service>/<type>/[labels/]), while the server is
# killed with SIGKILL at random moments (CRASH_KILLS times, default 22) and
# restarted on the same data directory.  A client records an ingest only
# once it was acknowledged: HTTP 200 (with the returned metadata), or cp
# exiting 0 (with the source file).  At the end every acknowledged profile
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

KILLS=${CRASH_KILLS:-22}
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

# http_client C: POSTs fixtures in turn; on 200 records "SOURCE<TAB>JSON".
http_client() {
    local c=$1 n=0 f type url out code
    while :; do
        f=${FILES[$(( (n * 7 + c) % NFILES ))]}
        type=$(basename "$f"); type=${type%%_*}
        url=$(cat "$T/url" 2>/dev/null)
        out=$(curl -s --max-time 15 -w '\n%{http_code}' --data-binary @"$f" \
              "$url/api/0/profiles?service=crash-h$c&type=$type&labels=client%3Dh$c,seq%3D$n")
        code=${out##*$'\n'}
        out=${out%$'\n'*}
        out=${out//$'\n'/}
        case "$code" in
            200) printf '%s\t%s\n' "$f" "$out" >> "$ACK/http.$c" ;;
            000) sleep 0.05 ;;
            *)   printf '%s\t%s\t%s\n' "$code" "$f" "$out" >> "$ACK/http-errors" ;;
        esac
        n=$((n + 1))
    done
}

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

for ((c = 1; c <= HTTP_CLIENTS; c++)); do http_client "$c" & CLIENT_PIDS+=($!); done
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
python3 - "$URL" "$ACK" > "$T/verify.out" 2>&1 <<'PY'
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
# hold at least as many copies of each source as were acknowledged.
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
for (service, ptype, labels), hashes in sorted(want.items()):
    want_labels = dict(p.split("=", 1) for p in labels.split(",")) if labels else {}
    have = {}
    for m in listing(service, ptype):
        if labels_of(m) != want_labels:
            bad.append("%s/%s: profile %s has labels %r, expected %r"
                       % (service, ptype, m["id"], labels_of(m), want_labels))
            continue
        st, data = get(base, "/api/0/profiles/" + m["id"])
        if st != 200:
            bad.append("listed %s cannot be read: HTTP %d" % (m["id"], st))
            continue
        h = hashlib.sha256(data).hexdigest()
        have[h] = have.get(h, 0) + 1
    for h, (count, src) in hashes.items():
        if have.get(h, 0) < count:
            bad.append("%s/%s [%s]: %d acknowledged copies of %s, %d stored"
                       % (service, ptype, labels, count, src, have.get(h, 0)))

print("verified %d HTTP and %d FUSE acknowledgements" % (n_http, n_fuse))
for b in bad[:30]:
    print("LOST/BAD:", b)
if len(bad) > 30:
    print("... and %d more" % (len(bad) - 30))
sys.exit(1 if bad else 0)
PY
vrc=$?
cat "$T/verify.out"
check "every acknowledged profile intact after $KILLS kills" [ "$vrc" = 0 ]

stop_server TERM
DB=$(db_file)
[ -n "$DB" ] && assert_eq "integrity after clean stop" ok "$(db_integrity "$DB")"
t_done
