#!/usr/bin/env bash
# bench/doors.sh — the "other agents' doors" row of scripts/bench, also
# runnable alone:
#
#     bench/doors.sh PROFEFS LOADER WORKDIR [ROUNDS] [SECONDS]
#
# The server CPU one profile costs through each ingest door, beside
# profefe's API with the same profile (tests/fixtures/cpu_001.pb.gz, dated
# now): POST /api/0/profiles; Pyroscope's /ingest with format=pprof (the
# type from the peeked sample types); its Connect push (a PushRequest in
# application/proto carrying the profile); /ingest with the same stacks as
# folded text (converted into a pprof by the server); OTLP profiles, as
# plain protobuf and gzip-compressed (the Collector's otlphttp exporter
# compresses by default).  bench/loader sends distinct bodies over 8
# connections for SECONDS (default 3) per door; the doors take turns,
# each round starting one door further on, ROUNDS times (default 3; 6
# puts every door once at every turn), and each one's figure is the
# median of its rounds, so that the load of a shared machine falls on all
# of them alike.  CPU per profile = the server's CPU time (utime + stime
# from /proc) over the acknowledged ingests.  Prints key=value lines on
# stdout (doors_<door>_us, doors_<door>_rps, doors_<door>_bad,
# doors_stored_check), logs on stderr.
set -euo pipefail
BIN=$1 LOADER=$2 W=$3 ROUNDS=${4:-3} SECS=${5:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNS=8
mkdir -p "$W"
log() { printf '[doors %s] %s\n' "$(date +%T)" "$*" >&2; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
  if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

NOW=$(date +%s)
BODY=$W/ingest.pb.gz
python3 "$ROOT/tests/tools/pprof_retime.py" "$ROOT/tests/fixtures/cpu_001.pb.gz" "$BODY" "$NOW"
# the Connect push: the profile inside a PushRequest; -mark finds its gzip
PUSH=$W/push.bin
python3 "$ROOT/tests/tools/pyroscope_push.py" proto "$PUSH" \
  "__name__=process_cpu,service_name=door-push,region=eu" "$BODY"
PUSH_MARK=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().index(open(sys.argv[2], "rb").read()))' "$PUSH" "$BODY")
# folded: the profile's stacks (function names, root first) and sample
# counts; the first frame is 8 characters the loader makes distinct
FOLDED=$W/ingest.folded
python3 "$ROOT/tests/canon.py" "$BODY" | python3 -c '
import sys
out = []
for line in sys.stdin:
    if " | " not in line:
        continue
    values, stack = line.split(" | ")[:2]
    frames = []
    for loc in stack.split(" < "):
        for fr in loc.split(" ", 1)[1].split(";"):
            frames.append(fr.rsplit(":", 2)[0])
    out.append(";".join(reversed(frames)) + " " + values.split()[0])
sys.stdout.write("00000000;" + "\n".join(out) + "\n")' > "$FOLDED"

# OTLP: the profile as an exporter sends it (tests/tools/otlp_gen.py), its
# first mapping named 00000000 for the loader to make each one distinct
OTLP=$W/otlp.bin
/usr/bin/python3 "$ROOT/tests/tools/otlp_gen.py" from-pprof "$BODY" "$OTLP" door-otlp 0 mark
OTLP_MARK=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().index(b"00000000"))' "$OTLP")

. "$ROOT/bench/serve.sh"
bench_serve "$BIN" "$W" --quiet
SERVER_PID=$PID
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
# Waits (up to 15 s) until the server's CPU time stands still for 0.3 s:
# what a door's load leaves to do (the writer's and checkpointer's
# trailing work) is counted in that door, not in the next one.
settle() {
  local a b i
  a=$(cpu_ticks)
  for ((i = 0; i < 50; i++)); do
    sleep 0.3
    b=$(cpu_ticks)
    [ "$a" = "$b" ] && return 0
    a=$b
  done
}
TICKS=$(getconf CLK_TCK)

DOORS="profefe ingest push folded otlp otlp_gzip"
read -ra ORDER <<<"$DOORS"
declare -A US RPS BAD OK
FIRST=0
# Each round starts one door further on, so that every door takes every
# turn: with a fixed order, whatever drifts through a round (the
# machine's other load, the writer's state) fell on the same door each
# time, and the first runs charged the last one, OTLP with gzip, 1.34x.
for ((r = 1; r <= ROUNDS; r++)); do
  for ((j = 0; j < ${#ORDER[@]}; j++)); do
    d=${ORDER[$(( (j + r - 1) % ${#ORDER[@]} ))]}
    case $d in
      profefe) args=(-url "$URL/api/0/profiles?service=door-profefe&type=cpu&labels=region=eu" -body "$BODY") ;;
      ingest)  args=(-url "$URL/ingest?name=door-ingest%7Bregion%3Deu%7D&format=pprof&spyName=gospy" -body "$BODY") ;;
      push)    args=(-url "$URL/push.v1.PusherService/Push" -type application/proto -body "$PUSH" -mark "$PUSH_MARK") ;;
      folded)  args=(-url "$URL/ingest?name=door-folded.cpu%7Bregion%3Deu%7D&from=$NOW&sampleRate=100" -body "$FOLDED" -mark-hex 0) ;;
      otlp)    args=(-url "$URL/v1development/profiles" -type application/x-protobuf -body "$OTLP" -mark-hex "$OTLP_MARK") ;;
      otlp_gzip) args=(-url "$URL/v1development/profiles" -type application/x-protobuf -body "$OTLP" -mark-hex "$OTLP_MARK" -gzip -pool $((SECS * 12000))) ;;
    esac
    settle
    c0=$(cpu_ticks)
    # -first: each run's bodies differ from every other run's (a repeat
    # would be an idempotent lookup, not an ingest; the count of stored
    # profiles checks it below)
    FIRST=$((FIRST + (1 << 22)))
    out=$("$LOADER" -c "$CONNS" -d "${SECS}s" -first "$FIRST" "${args[@]}") || log "$d: loader reported failures: $out"
    settle
    us=$(awk -v t="$(( $(cpu_ticks) - c0 ))" -v k="$TICKS" -v n="$(kv ok "$out")" 'BEGIN { printf "%.0f", n ? t / k * 1e6 / n : 0 }')
    US[$d]+="$us "; OK[$d]=$(( ${OK[$d]:-0} + $(kv ok "$out") )); RPS[$d]+="$(kv rps "$out") "; BAD[$d]=$(( ${BAD[$d]:-0} + $(kv bad "$out") + $(kv errors "$out") ))
    log "round $r $d: $out; $us us of server CPU per profile"
  done
done
for d in $DOORS; do
  # shellcheck disable=SC2086
  echo "doors_${d}_us=$(median ${US[$d]})"
  # shellcheck disable=SC2086
  echo "doors_${d}_rps=$(median ${RPS[$d]} | awk '{ printf "%.0f", $1 }')"
  echo "doors_${d}_bad=${BAD[$d]}"
done
# Every acknowledged ingest stored a profile of its own: no run timed
# repeats (idempotent lookups) instead of ingests.
stored() {
  curl -s "$URL/api/0/profiles?service=$1&type=cpu&from=1970-01-01T00:00:00&to=2100-01-01T00:00:00" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["body"]))'
}
check=ok
for s in profefe ingest push folded otlp; do
  want=${OK[$s]:-0}
  [ "$s" = otlp ] && want=$((want + ${OK[otlp_gzip]:-0}))
  got=$(stored "door-$s" 2>/dev/null || echo "?")
  [ "$got" = "$want" ] || check="mismatch: door-$s $want acknowledged, $got stored"
done
echo "doors_stored_check=$check"
