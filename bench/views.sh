#!/usr/bin/env bash
# bench/views.sh — the views rows of scripts/bench (issue 19), also
# runnable alone:
#
#     bench/views.sh PROFEFS LOADER WORKDIR [RUNS]
#
# Loads 1,000 and 20,000 retimed CPU fixtures (bench/gen_profiles.py, in
# 2065: no rollups) into a fresh server over HTTP, then measures, RUNS
# times each (median): the merge of the 1,000 as pprof, svg, folded, top
# and json; beside it `go tool pprof -traces` and `-top` of the same files
# (the text views Go gives); the svg's size; and the server's peak RSS
# (VmHWM, reset first) while answering the svg of the 20,000.
# Prints key=value lines on stdout, logs on stderr.
set -euo pipefail
BIN=$1 LOADER=$2 W=$3 RUNS=${4:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=1000 BIG=${VIEWS_BIG:-20000}
BASE=3000000000
mkdir -p "$W"
log() { printf '[views %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
  if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }

GEN=${VIEWS_GEN:-$W/gen}
log "generating $BIG profiles"
python3 "$ROOT/bench/gen_profiles.py" "$ROOT/tests/fixtures" "$GEN" "$BIG" "$BASE" 1
# the first N files and all BIG, by name (gen_profiles.py's p%05d.pb.gz)
awk -v d="$GEN" -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "%s/p%05d.pb.gz\n", d, i }' >"$W/small.list"
awk -v d="$GEN" -v n="$BIG" 'BEGIN { for (i = 0; i < n; i++) printf "%s/p%05d.pb.gz\n", d, i }' >"$W/big.list"

. "$ROOT/bench/serve.sh"
bench_serve "$BIN" "$W"
log "ingesting $N + $BIG profiles over HTTP (8 connections)"
"$LOADER" -url "$URL/api/0/profiles?service=v$N&type=cpu" -c 8 -files "$W/small.list" >/dev/null ||
  die "ingest failed"
"$LOADER" -url "$URL/api/0/profiles?service=v$BIG&type=cpu" -c 8 -files "$W/big.list" >/dev/null ||
  die "ingest failed"

Q="type=cpu&from=$(utc $BASE)&to=$(utc $((BASE + BIG)))"
# Formats interleaved run by run, so that the load of a shared machine
# weighs on each alike.
FORMATS=(pprof svg folded top json)
declare -A TS
for ((r = 0; r < RUNS; r++)); do
  for f in "${FORMATS[@]}"; do
    read -r st t < <(curl -s -o "$W/m.$f" -w '%{http_code} %{time_total}\n' --max-time 600 \
      "$URL/api/0/profiles/merge?service=v$N&$Q&format=$f")
    [ "$st" = 200 ] || die "format=$f: HTTP $st"
    TS[$f]="${TS[$f]:-} $t"
  done
done
for f in "${FORMATS[@]}"; do
  # shellcheck disable=SC2086
  echo "views_$f=$(median ${TS[$f]})"
  log "  format=$f: median $(median ${TS[$f]}) s [${TS[$f]} ]"
done
echo "views_svg_bytes=$(stat -c %s "$W/m.svg")"

mapfile -t files <"$W/small.list"
for what in traces top; do
  ts=()
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now)
    go tool pprof -$what "${files[@]}" >"$W/go.$what" 2>>"$W/go.err" || die "go tool pprof -$what failed"
    ts+=("$(elapsed "$t0")")
  done
  echo "views_go_$what=$(median "${ts[@]}")"
  log "  go tool pprof -$what: median $(median "${ts[@]}") s"
done
cmp -s "$W/m.top" "$W/go.top" && echo "views_top_same=1" || echo "views_top_same=0"

log "svg of the $BIG-profile merge: peak RSS"
echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true
before=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$PID/status")
read -r st t < <(curl -s -o "$W/big.svg" -w '%{http_code} %{time_total}\n' --max-time 600 \
  "$URL/api/0/profiles/merge?service=v$BIG&$Q&format=svg")
[ "$st" = 200 ] || die "svg of $BIG: HTTP $st"
echo "views_big_svg=$t"
echo "views_big_hwm_before_kb=$before"
echo "views_big_hwm_kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$PID/status")"
kill -TERM $PID; wait $PID || true
trap - EXIT
