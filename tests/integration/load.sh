#!/usr/bin/env bash
# tests/integration/load.sh — ingest, list, merge and FUSE reads at once,
# from many clients, for LOAD_SECONDS (default 20; scripts/soak runs it
# for longer).
#
# Clients (bounded: each one request at a time, loopback only):
#   LOAD_INGEST (4)  POST fixtures with labels
#   LOAD_LIST   (2)  GET /api/0/profiles (limit 200), checks a known id is listed
#   LOAD_MERGE  (2)  GET /api/0/profiles/merge (limit 100), checks gzip magic
#   LOAD_FUSE   (2)  ls a type dir, cat a stored file (size must equal stat),
#                    cat a merge file
# Passes when no request failed, the server's VmRSS in the second half
# stays within 1.25x + 32 MB of the first half (after a warm-up), and it
# stops cleanly (LeakSanitizer in the sanitizer build).  Prints per-kind
# request counts and latencies (p50/p95/p99/max) and the RSS figures.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

SECS=${LOAD_SECONDS:-20}
N_INGEST=${LOAD_INGEST:-4}
N_LIST=${LOAD_LIST:-2}
N_MERGE=${LOAD_MERGE:-2}
N_FUSE=${LOAD_FUSE:-2}
MNT=$T/mnt
LAT=$T/lat
mkdir -p "$LAT"
CLIENT_PIDS=()

load_cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    t_cleanup
}
trap load_cleanup EXIT

# A smaller ASan quarantine, so that RSS follows live memory rather than
# the 256 MB of recently freed blocks ASan keeps by default.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=16"
start_server --mount "$MNT" --quiet || t_done

FILES=("$FIXTURES"/cpu_*.pb.gz "$FIXTURES"/heap_*.pb.gz)
NFILES=${#FILES[@]}
SERVICES=(load-a load-b load-c)
W='from=1970-01-02T00:00:00&to=2199-01-01T00:00:00'

# Seed every service/type so that readers have something from the start.
for s in "${SERVICES[@]}"; do
    for f in "$FIXTURES"/cpu_000.pb.gz "$FIXTURES"/heap_000.pb.gz; do
        t=$(basename "$f"); t=${t%%_*}
        SEED_ID=$(ingest "$f" "$s" "$t" "seed=1")
    done
done
check "seed ingests worked" [ ${#SEED_ID} = 20 ]

END=$(( $(date +%s) + SECS ))

# Each client appends "KIND<TAB>STATUS<TAB>SECONDS" per request.
ingester() {
    local c=$1 n=0 f t s r
    while [ "$(date +%s)" -lt "$END" ]; do
        f=${FILES[$(( (n * 3 + c) % NFILES ))]}
        t=$(basename "$f"); t=${t%%_*}
        s=${SERVICES[$(( n % ${#SERVICES[@]} ))]}
        r=$(curl -s -o /dev/null --max-time 60 -w '%{http_code}\t%{time_total}' --data-binary @"$f" \
            "$URL/api/0/profiles?service=$s&type=$t&labels=client%3D$c,n%3D$n")
        printf 'ingest\t%s\n' "$r" >> "$LAT/ingest.$c"
        n=$((n + 1))
    done
}

lister() {
    local c=$1 n=0 s r
    while [ "$(date +%s)" -lt "$END" ]; do
        s=${SERVICES[$(( n % ${#SERVICES[@]} ))]}
        r=$(curl -s -o "$T/list.$c" --max-time 60 -w '%{http_code}\t%{time_total}' \
            "$URL/api/0/profiles?service=$s&type=cpu&$W&limit=200")
        # the oldest profiles come first: the seed of this service is listed
        case "$r" in 200*) grep -q '"seed"' "$T/list.$c" || r="badlist${r#200}" ;; esac
        printf 'list\t%s\n' "$r" >> "$LAT/list.$c"
        n=$((n + 1))
    done
}

merger() {
    local c=$1 n=0 s t r
    while [ "$(date +%s)" -lt "$END" ]; do
        s=${SERVICES[$(( n % ${#SERVICES[@]} ))]}
        t=cpu; [ $((n % 2)) = 1 ] && t=heap
        r=$(curl -s -o "$T/merge.$c" --max-time 60 -w '%{http_code}\t%{time_total}' \
            "$URL/api/0/profiles/merge?service=$s&type=$t&$W&limit=100")
        case "$r" in 200*) [ "$(head -c 2 "$T/merge.$c" | od -An -tx1 | tr -d ' ')" = 1f8b ] || r="badgzip${r#200}" ;; esac
        printf 'merge\t%s\n' "$r" >> "$LAT/merge.$c"
        n=$((n + 1))
    done
}

# fuse_timed KIND COMMAND...: runs COMMAND, records its status and time.
fuse_timed() {
    local kind=$1 c=$2 t0 rc; shift 2
    t0=$(date +%s%N)
    "$@"; rc=$?
    printf '%s\t%s\t%s\n' "$kind" "$rc" \
        "$(awk -v d=$(( $(date +%s%N) - t0 )) 'BEGIN { printf "%.6f", d / 1e9 }')" >> "$LAT/fuse.$c"
}

fuse_cat() {  # exact size: the bytes read equal what stat says
    local size got
    size=$(stat -c %s "$1") || return 1
    got=$(cat "$1" | wc -c) || return 1
    [ "$size" = "$got" ]
}

fuse_merge() {  # a non-empty gzip
    [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' ')" = 1f8b ]
}

fuse_reader() {
    local c=$1 n=0 s d l files f
    while [ "$(date +%s)" -lt "$END" ]; do
        s=${SERVICES[$(( (n + c) % ${#SERVICES[@]} ))]}
        # profiles live in the directory of their label set
        d="$MNT/$s/cpu"
        fuse_timed ls "$c" ls "$d" > "$T/ls.$c"
        l=$(grep = "$T/ls.$c" | shuf -n 1)
        [ -n "$l" ] && d="$d/$l" && fuse_timed ls "$c" ls "$d" > "$T/ls.$c"
        files=$(grep '\.pb\.gz$' "$T/ls.$c")
        f=$(printf '%s\n' "$files" | shuf -n 1)
        [ -n "$f" ] && fuse_timed cat "$c" fuse_cat "$d/$f"
        fuse_timed fmerge "$c" fuse_merge "$MNT/merge/$s/cpu/1700000000..1900000000"
        n=$((n + 1))
    done
}

rss_sampler() {
    while [ "$(date +%s)" -lt "$END" ]; do
        awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status" >> "$T/rss"
        sleep 1
    done
}

for ((c = 1; c <= N_INGEST; c++)); do ingester "$c" & CLIENT_PIDS+=($!); done
for ((c = 1; c <= N_LIST; c++)); do lister "$c" & CLIENT_PIDS+=($!); done
for ((c = 1; c <= N_MERGE; c++)); do merger "$c" & CLIENT_PIDS+=($!); done
for ((c = 1; c <= N_FUSE; c++)); do fuse_reader "$c" & CLIENT_PIDS+=($!); done
rss_sampler & CLIENT_PIDS+=($!)
for p in "${CLIENT_PIDS[@]}"; do wait "$p"; done
CLIENT_PIDS=()

# ---- report ----------------------------------------------------------------------
python3 - "$LAT" "$T/rss" "$SECS" > "$T/report" <<'PY'
import glob, os, sys
lat, rssf, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
kinds, errors = {}, {}
for path in glob.glob(os.path.join(lat, "*")):
    for line in open(path):
        p = line.rstrip("\n").split("\t")
        if len(p) != 3:
            continue
        kind, status, t = p
        good = status == "200" if kind in ("ingest", "list", "merge") else status == "0"
        if good:
            kinds.setdefault(kind, []).append(float(t))
        else:
            errors.setdefault(kind + " " + status, 0)
            errors[kind + " " + status] += 1
for kind in sorted(kinds):
    v = sorted(kinds[kind])
    q = lambda f: v[min(len(v) - 1, int(f * len(v)))] * 1000
    print("load: %-7s %6d ok %6.1f/s  p50 %7.1f ms  p95 %7.1f ms  p99 %7.1f ms  max %7.1f ms"
          % (kind, len(v), len(v) / secs, q(.5), q(.95), q(.99), v[-1] * 1000))
for e in sorted(errors):
    print("load: ERRORS %s x%d" % (e, errors[e]))
rss = [int(x) // 1024 for x in open(rssf) if x.strip()]
warm = max(1, len(rss) // 6)            # skip the first sixth: warm-up
rest = rss[warm:]
half = len(rest) // 2
first, second = rest[:half] or [0], rest[half:] or [0]
print("load: RSS MB start %d, first half max %d, second half max %d, end %d"
      % (rss[0] if rss else 0, max(first), max(second), rss[-1] if rss else 0))
print("RSS_FIRST=%d RSS_SECOND=%d ERRORS=%d" % (max(first), max(second), sum(errors.values())))
print("COUNTS=" + ",".join("%s:%d" % (k, len(kinds[k])) for k in sorted(kinds)))
PY
grep '^load:' "$T/report"
eval "$(grep '^RSS_FIRST=' "$T/report")"
counts=$(sed -n 's/^COUNTS=//p' "$T/report")
assert_eq "requests that failed" 0 "$ERRORS"
for k in ingest list merge ls cat fmerge; do
    case ",$counts" in *",$k:"*) ok ;; *) fail "no successful $k request at all" ;; esac
done
check "RSS stable: second half ${RSS_SECOND} MB <= 1.25 x first half ${RSS_FIRST} MB + 32 MB" \
    [ "$RSS_SECOND" -le $(( RSS_FIRST * 5 / 4 + 32 )) ]

# Everything ingested under load is listed afterwards: count per service.
total=0
for s in "${SERVICES[@]}"; do
    for t in cpu heap; do
        http GET "$URL/api/0/profiles?service=$s&type=$t&$W"
        [ "$HTTP_STATUS" = 200 ] && total=$(( total + $(json 'len(j["body"])') ))
    done
done
acked=$(cat "$LAT"/ingest.* | grep -c $'^ingest\t200')
assert_eq "listed profiles = seeds + acknowledged ingests" $(( acked + ${#SERVICES[@]} * 2 )) "$total"
t_done
