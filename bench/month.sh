#!/usr/bin/env bash
# bench/month.sh — the month row of scripts/bench, also runnable alone:
#
#     bench/month.sh PROFEFS LOADER WORKDIR [RUNS]
#
# 30 days of CPU profiles, one every 2 minutes (21,600), spread over 50
# label sets host=h0..h49,dc=x, ingested over HTTP into a fresh server.
# Measured, each RUNS times (median), right after loading ("first") and
# once the store's background upkeep has built its rollups ("after"):
# the merge of the whole month without labels, and of one host's month
# (labels=host=h7), and the whole month as an svg flame graph after
# upkeep.  The reference is `go tool pprof -proto` over the same
# files in the same run; answers are compared by sample totals.  Also the
# storage cost of the rollups (bytes of rollups / bytes of profiles) and
# the time upkeep took.  Prints key=value lines on stdout, logs on stderr.
set -euo pipefail
BIN=$1 LOADER=$2 W=$3 RUNS=${4:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOSTS=50 STEP=120 DAYS=30
N=$((DAYS * 86400 / STEP))
BASE=1698796800 # 2023-11-01T00:00:00Z: a month long complete
HOST=7          # the host of the one-host row
mkdir -p "$W"
log() { printf '[month %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
  if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S; }
sample_totals() {
  go tool pprof -raw "$1" 2>/dev/null | python3 -c '
import re, sys
s0 = s1 = 0
ins = False
for line in sys.stdin:
    if line.startswith("Samples:"): ins = True; continue
    if ins and re.match(r"^[A-Za-z]", line) and not line.startswith("samples/"): break
    m = re.match(r"^\s+(\d+)\s+(\d+):", line)
    if ins and m: s0 += int(m.group(1)); s1 += int(m.group(2))
print("samples=%d,value1=%d" % (s0, s1))'
}

GEN=$W/gen
log "generating $N profiles (one per $STEP s from $(utc $BASE))"
python3 "$ROOT/bench/gen_profiles.py" "$ROOT/tests/fixtures" "$GEN" "$N" "$BASE" "$STEP"
# Profile i belongs to host i % HOSTS: each host's list, and the host's
# files for go.
for ((h = 0; h < HOSTS; h++)); do
  awk -v h="$h" -v n="$HOSTS" -v d="$GEN" 'BEGIN {
    for (i = h; i < '"$N"'; i += n) printf "%s/p%05d.pb.gz\n", d, i }' >"$W/host$h.list"
done

. "$ROOT/bench/serve.sh"
bench_serve "$BIN" "$W" --quiet

log "ingesting over HTTP, 8 connections, one host at a time"
t0=$EPOCHREALTIME
for ((h = 0; h < HOSTS; h++)); do
  "$LOADER" -url "$URL/api/0/profiles?service=month&type=cpu&labels=host%3Dh$h,dc%3Dx" \
    -c 8 -files "$W/host$h.list" >/dev/null || die "ingest of host $h failed"
done
loaded=$EPOCHREALTIME
echo "month_ingest_rate=$(awk -v n=$N -v a="$t0" -v b="$loaded" 'BEGIN { printf "%.0f", n / (b - a) }')"

ALL="$URL/api/0/profiles/merge?service=month&type=cpu&from=$(utc $BASE)&to=$(utc $((BASE + DAYS * 86400 - 1)))"
ONE="$ALL&labels=host%3Dh$HOST"
measure() { # measure NAME URL [VIEW]: median of RUNS merges, and sample
  # totals (none when VIEW: the answer is not a pprof)
  local ts=() st t r
  for ((r = 0; r < RUNS; r++)); do
    read -r st t < <(curl -s -o "$W/$1.pb.gz" -w '%{http_code} %{time_total}\n' --max-time 600 "$2")
    [ "$st" = 200 ] || die "$1: HTTP $st"
    ts+=("$t")
  done
  echo "$1=$(median "${ts[@]}")"
  [ -n "${3:-}" ] || echo "$1_totals=$(sample_totals "$W/$1.pb.gz")"
}
log "merges right after loading"
measure month_all_first "$ALL"
measure month_one_first "$ONE"

log "waiting for upkeep (rollups built: no slot of the month left due)"
DB=$W/data/profefs.db
due() {
  python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=30)
print(db.execute("SELECT count(*) FROM rollup_dirty WHERE service = 'month'").fetchone()[0])
PY
}
for ((i = 0; i < 900; i++)); do
  [ "$(due)" = 0 ] && break
  sleep 1
done
[ "$(due)" = 0 ] || die "upkeep not done after 900 s"
echo "month_upkeep_s=$(awk -v a="$loaded" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')"
log "merges after upkeep"
measure month_all_after "$ALL"
measure month_one_after "$ONE"
# the whole month as a flame graph (issue 19: < 100 ms after upkeep)
measure month_all_svg_after "$ALL&format=svg" view
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=30)
r = db.execute("SELECT coalesce(sum(length(data)), 0) FROM rollup_data").fetchone()[0]
p = db.execute("SELECT coalesce(sum(bytes), 0) FROM series").fetchone()[0]
n = db.execute("SELECT count(*) FROM rollups").fetchone()[0]
print("month_rollup_bytes=%d" % r)
print("month_profile_bytes=%d" % p)
print("month_rollup_rows=%d" % n)
PY
kill -TERM $PID; wait $PID || true
trap - EXIT

log "go tool pprof -proto on the same files (whole month, then host h$HOST)"
# One go process each (arrays, not xargs, which would split the list).
mapfile -t all < <(cd "$GEN" && ls | grep '^p.*\.pb\.gz$' | sort | head -n "$N")
t0=$EPOCHREALTIME
(cd "$GEN" && go tool pprof -proto "${all[@]}" >"$W/go_all.pb.gz" 2>>"$W/go.err") ||
  die "go tool pprof failed (see $W/go.err)"
echo "month_go_all=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
echo "month_go_all_totals=$(sample_totals "$W/go_all.pb.gz")"
ts=()
for ((r = 0; r < RUNS; r++)); do
  t0=$EPOCHREALTIME
  mapfile -t one <"$W/host$HOST.list"
  go tool pprof -proto "${one[@]}" >"$W/go_one.pb.gz" 2>>"$W/go.err" ||
    die "go tool pprof failed"
  ts+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")
done
echo "month_go_one=$(median "${ts[@]}")"
echo "month_go_one_totals=$(sample_totals "$W/go_one.pb.gz")"
