#!/usr/bin/env bash
# http_pprof.sh — `go tool pprof` opens what the HTTP API serves: merges by
# query and by ids, and raw profiles, straight from their URLs; and an HTTP
# merge equals `go tool pprof -proto` of the same files sample by sample
# (compared through tests/canon.py, which prints a canonical text).
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"
CANON="$TESTS_DIR/canon.py"

pprof() { go tool pprof "$@" 2>>"$T/pprof.err"; }

start_server || t_done

# The fixtures' own time_nanos: cpu_000..cpu_004 are 1795556966..1795556970.
declare -a CPU_IDS
for k in 0 1 2 3 4; do
    CPU_IDS[$k]=$(ingest "$FIXTURES/cpu_00$k.pb.gz" pp cpu "host=h$((k % 2))")
done
HEAP_IDS=()
for k in 000 005 010; do
    HEAP_IDS+=("$(ingest "$FIXTURES/heap_$k.pb.gz" pp heap)")
done
check "ingested 8 profiles" test "${#CPU_IDS[@]}" -eq 5 -a "${#HEAP_IDS[@]}" -eq 3
FROM=$(utc 1795556966)
TO=$(utc 1795556970)
MERGE="$URL/api/0/profiles/merge?service=pp&type=cpu&from=$FROM&to=$TO"

# ---- go tool pprof on URLs -----------------------------------------------------------
out=$(pprof -raw "$MERGE"); rc=$?
assert_eq "pprof -raw of the merge URL exits 0" 0 "$rc"
assert_contains "pprof -raw of the merge: period type" "$out" "PeriodType: cpu nanoseconds"
assert_contains "pprof -raw of the merge: samples" "$out" "Samples:"
out=$(pprof -top "$MERGE"); rc=$?
assert_eq "pprof -top of the merge URL exits 0" 0 "$rc"
assert_contains "pprof -top of the merge: table" "$out" "flat%"
assert_contains "pprof -top of the merge: nodes" "$out" "Showing nodes"

out=$(pprof -raw "$URL/api/0/profiles/${CPU_IDS[0]}"); rc=$?
assert_eq "pprof -raw of a raw profile URL exits 0" 0 "$rc"
assert_eq "pprof -raw: URL and file agree" "$(pprof -raw "$FIXTURES/cpu_000.pb.gz")" "$out"

out=$(pprof -raw "$URL/api/0/profiles/${CPU_IDS[0]}+${CPU_IDS[1]}"); rc=$?
assert_eq "pprof -raw of an id merge URL exits 0" 0 "$rc"
assert_contains "pprof -raw of the id merge: samples" "$out" "Samples:"

out=$(pprof -top "$URL/api/0/profiles/merge?service=pp&type=heap&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"); rc=$?
assert_eq "pprof -top of a heap merge URL exits 0" 0 "$rc"
assert_contains "pprof -top of the heap merge" "$out" "flat%"

# ---- HTTP merge == go tool pprof -proto, sample by sample -------------------------------
if [ ! -f "$CANON" ]; then
    fail "tests/canon.py is missing"
else
    pprof -proto "$FIXTURES"/cpu_00[0-4].pb.gz >"$T/want_cpu.pb.gz"
    curl -s -o "$T/got_cpu.pb.gz" "$MERGE"
    same_profile "query merge of 5 cpu profiles" "$T/want_cpu.pb.gz" "$T/got_cpu.pb.gz"

    pprof -proto "$FIXTURES/heap_000.pb.gz" "$FIXTURES/heap_005.pb.gz" "$FIXTURES/heap_010.pb.gz" >"$T/want_heap.pb.gz"
    curl -s -o "$T/got_heap.pb.gz" "$URL/api/0/profiles/merge?service=pp&type=heap&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
    same_profile "query merge of 3 heap profiles" "$T/want_heap.pb.gz" "$T/got_heap.pb.gz"

    pprof -proto "$FIXTURES/cpu_001.pb.gz" "$FIXTURES/cpu_003.pb.gz" >"$T/want_ids.pb.gz"
    curl -s -o "$T/got_ids.pb.gz" "$URL/api/0/profiles/${CPU_IDS[1]}+${CPU_IDS[3]}"
    same_profile "id merge of 2 cpu profiles" "$T/want_ids.pb.gz" "$T/got_ids.pb.gz"

    # label filter h1 selects cpu_001 and cpu_003: the same merge again
    curl -s -o "$T/got_lab.pb.gz" "$MERGE&labels=host=h1"
    same_profile "query merge with a label filter" "$T/want_ids.pb.gz" "$T/got_lab.pb.gz"

    # a limit keeps the oldest: cpu_000 and cpu_001
    pprof -proto "$FIXTURES/cpu_000.pb.gz" "$FIXTURES/cpu_001.pb.gz" >"$T/want_lim.pb.gz"
    curl -s -o "$T/got_lim.pb.gz" "$MERGE&limit=2"
    same_profile "query merge with limit=2" "$T/want_lim.pb.gz" "$T/got_lim.pb.gz"
fi

stop_server TERM
[ "$T_FAILS" -ne 0 ] && [ -s "$T/pprof.err" ] && { echo "--- pprof stderr" >&2; tail -n 20 "$T/pprof.err" >&2; }
t_done
