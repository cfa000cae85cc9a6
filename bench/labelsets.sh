#!/usr/bin/env bash
# bench/labelsets.sh — the label-set rows of scripts/bench (issue 21), also
# runnable alone:
#
#     bench/labelsets.sh PROFEFS LABELSETS WORKDIR [RUNS] [SETS] [PROFILES]
#
# One service, one type: SETS label sets (default 20,000: pod=pNNNNNN plus
# region eu/us/ap) and PROFILES profiles (default 100,000) over 7 days,
# loaded through the store API by LABELSETS (tests/tools/labelsets.c, 8
# threads; the same load with one label set is the ingest baseline), then
# served with a FUSE mount.  Once upkeep has built the rollups, each RUNS
# times (median; a different pod each run, past the kernel's caches):
# stat of a label directory (stored and merge tree, timed in one python
# process), ls -l of a label directory, of the stored and of the merge
# type directory, find of every profile, the HTTP list of one pod's week,
# merges of one pod's, region=eu's and the whole week, the label keys and
# the values of region and pod; and the rollups' bytes against the
# profiles'.  Prints key=value lines on stdout (seconds), logs on stderr.
set -euo pipefail
BIN=$1 LOADER=$2 W=$3 RUNS=${4:-5} SETS=${5:-20000} PROFILES=${6:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=1699833600 # 2023-11-13T00:00:00Z, a Monday long past
mkdir -p "$W"
log() { printf '[labelsets %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
  if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }'; }

GEN=$W/gen
log "generating 1,008 profiles, one per 10 min of the week"
python3 "$ROOT/bench/gen_profiles.py" "$ROOT/tests/fixtures" "$GEN" 1008 $BASE 600
rm -rf "$W/one" "$W/data"
log "loading $PROFILES profiles with one label set (the baseline)"
one=$("$LOADER" "$W/one" svc 1 "$PROFILES" "$GEN"/*.pb.gz) || die "baseline load failed"
rm -rf "$W/one"
log "loading $PROFILES profiles over $SETS label sets"
many=$("$LOADER" "$W/data" svc "$SETS" "$PROFILES" "$GEN"/*.pb.gz) || die "load failed"
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
echo "ls_ingest_one=$(awk -v n="$PROFILES" -v s="$(kv seconds "$one")" 'BEGIN { printf "%.0f", n / s }')"
echo "ls_ingest_many=$(awk -v n="$PROFILES" -v s="$(kv seconds "$many")" 'BEGIN { printf "%.0f", n / s }')"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
M=$W/mnt
mkdir -p "$M"
"$BIN" serve --data "$W/data" --addr "127.0.0.1:$PORT" --mount "$M" --quiet 2>"$W/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for ((i = 0; i < 300; i++)); do
  curl -s -o /dev/null --max-time 1 "$URL/api/0/version" && mountpoint -q "$M" && break
  sleep 0.2
done
t0=$EPOCHREALTIME
log "waiting for upkeep (rollups built: no slot left due)"
due() {
  python3 - "$W/data/profefs.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=30)
print(db.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0])
PY
}
for ((i = 0; i < 1800; i++)); do
  [ "$(due)" = 0 ] && break
  sleep 1
done
[ "$(due)" = 0 ] || die "upkeep not done after 1800 s"
echo "ls_upkeep_s=$(since "$t0")"
echo "ls_load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

F=$(utc $BASE) T=$(utc $((BASE + 7 * 86400 - 1)))
Q="service=svc&type=cpu&from=$F&to=$T"
pod() { printf 'p%06d' $(( ($1 * 7919 + 13) % SETS )); }
region() { local r=(eu us ap); echo "${r[$(( ($1 * 7919 + 13) % SETS % 3 ))]}"; }
timed() { # timed NAME CMD...: median of RUNS runs of CMD (with $r the run)
  local name=$1 ts=() t; shift
  for ((r = 0; r < RUNS; r++)); do
    sleep 1.1 # past the kernel's entry and attribute caches
    t=$EPOCHREALTIME
    eval "$@" >/dev/null 2>&1 || die "$name failed: $*"
    ts+=("$(since "$t")")
  done
  echo "$name=$(median "${ts[@]}")"
}
curl_t() { # curl_t NAME URL: median of RUNS requests' time_total
  local name=$1 ts=() st t; shift
  for ((r = 0; r < RUNS; r++)); do
    read -r st t < <(curl -s -o "$W/out" -w '%{http_code} %{time_total}\n' --max-time 600 "$(eval echo "\"$1\"")")
    [ "$st" = 200 ] || die "$name: HTTP $st"
    ts+=("$t")
  done
  echo "$name=$(median "${ts[@]}")"
}
log "measuring, $RUNS runs each"
# stats in one process: 20 pods per run, each stat'ed once (cold)
python3 - "$M" "$SETS" "$RUNS" <<'PY'
import os, statistics, sys, time
m, sets, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
regions = ["eu", "us", "ap"]
st, mst = [], []
for i in range(runs * 20):
    p = (i * 104729 + 7) % sets
    t = time.perf_counter(); os.stat("%s/svc/cpu/pod=p%06d,region=%s" % (m, p, regions[p % 3]))
    st.append(time.perf_counter() - t)
    t = time.perf_counter(); os.stat("%s/merge/svc/cpu/pod=p%06d" % (m, p))
    mst.append(time.perf_counter() - t)
print("ls_stat=%.6f" % statistics.median(st))
print("ls_mstat=%.6f" % statistics.median(mst))
PY
timed ls_ls_labeldir 'ls -l "$M/svc/cpu/pod=$(pod $r),region=$(region $r)"'
timed ls_ls_type 'ls -l "$M/svc/cpu"'
timed ls_ls_mtype 'ls -l "$M/merge/svc/cpu"'
timed ls_ls_f_type 'ls -f "$M/svc/cpu"'
timed ls_find 'find "$M/svc" -name "*.pb.gz" | wc -l >"$W/find.n"'
echo "ls_find_n=$(cat "$W/find.n")"
curl_t ls_list_pod '$URL/api/0/profiles?$Q&labels=pod=$(pod $r)'
curl_t ls_merge_pod '$URL/api/0/profiles/merge?$Q&labels=pod=$(pod $r)'
curl_t ls_merge_region '$URL/api/0/profiles/merge?$Q&labels=region=eu'
curl_t ls_merge_all '$URL/api/0/profiles/merge?$Q'
curl_t ls_keys '$URL/api/0/labels?service=svc&type=cpu'
curl_t ls_values_region '$URL/api/0/labels/region/values?$Q'
curl_t ls_values_pod '$URL/api/0/labels/pod/values?$Q'
kill -TERM $PID; wait $PID || true
trap - EXIT
python3 - "$W/data/profefs.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=30)
r = db.execute("SELECT coalesce(sum(length(data)), 0) FROM rollup_data").fetchone()[0]
p = db.execute("SELECT coalesce(sum(bytes), 0) FROM series").fetchone()[0]
n = db.execute("SELECT count(*) FROM rollups").fetchone()[0]
print("ls_rollup_bytes=%d" % r)
print("ls_profile_bytes=%d" % p)
print("ls_rollup_rows=%d" % n)
PY
