#!/usr/bin/env bash
# tests/integration/fuzz_short.sh — a short libFuzzer run of every target
# in tests/fuzz (FUZZ_SECONDS each, default 6; scripts/soak runs longer),
# as part of the test suite.
#
# Builds build-fuzz/ next to the sources (kept between runs, so later runs
# only recompile what changed and reuse the grown corpus), replays every
# input of tests/fuzz/regress/ (crashes found before), then fuzzes; fails
# on any crash, sanitizer report, leak, timeout or failed property check.
# scripts/fuzz does the work; run it directly for long runs.  Skipped
# (exit 77) when clang or libFuzzer is not installed.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

SRC=$(cd "$TESTS_DIR/.." && pwd)
"$SRC/scripts/fuzz" "${FUZZ_SECONDS:-6}" > "$T/fuzz.out" 2>&1
rc=$?
cat "$T/fuzz.out"
[ $rc = 77 ] && { echo "fuzz_short: skipped"; exit 77; }
assert_eq "scripts/fuzz exit status" 0 "$rc"
# Every target ran and executed inputs (a target that exits at once would
# otherwise look clean).
n_ok=$(grep -cE '^fuzz: [a-z_]+: ok, [0-9]+ runs' "$T/fuzz.out")
n_targets=$(ls "$TESTS_DIR"/fuzz/fuzz_*.c | wc -l)
check "all $n_targets targets fuzzed ($n_ok ok)" [ "$n_ok" -ge "$n_targets" ]
t_done
