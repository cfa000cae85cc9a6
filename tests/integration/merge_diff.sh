#!/usr/bin/env bash
# merge_diff.sh — `profefs merge` gives the same profile as
# `go tool pprof -proto` (up to ids and ordering) for every profile type of
# tests/fixtures, for a mixed set with repeated files, for one file and for
# labelled CPU profiles with inlined frames (tests/data/cpu_labels_*);
# merging a file with itself doubles its values; `go tool pprof -top` opens
# our output.  Profiles are compared through tests/canon.py.
. "$TESTS_DIR/lib.sh"
t_init

# Go writes its caches and pprof's saved profiles under these; keep them in $T.
export HOME="$T" GOCACHE="$T/gocache" PPROF_TMPDIR="$T" GOFLAGS=
command -v go >/dev/null || { fail "go is not installed"; t_done; }

# same_as_go NAME FILE...: both merges, canonicalised, must be equal.
same_as_go() {
    local name=$1 rc; shift
    "$PROFEFS" merge "$@" >"$T/$name.ours.pb.gz" 2>"$T/$name.ours.err"; rc=$?
    assert_eq "$name: profefs merge exit status" 0 "$rc"
    assert_eq "$name: profefs merge stderr" "" "$(cat "$T/$name.ours.err")"
    if ! go tool pprof -proto "$@" >"$T/$name.go.pb.gz" 2>"$T/$name.go.err"; then
        fail "$name: go tool pprof -proto failed: $(head -3 "$T/$name.go.err")"
        return
    fi
    canon "$T/$name.ours.pb.gz" >"$T/$name.ours.txt" || { fail "$name: canon ours"; return; }
    canon "$T/$name.go.pb.gz" >"$T/$name.go.txt" || { fail "$name: canon go"; return; }
    if cmp -s "$T/$name.ours.txt" "$T/$name.go.txt"; then
        ok
    else
        fail "$name: merged profiles differ (< go, > profefs):"
        diff "$T/$name.go.txt" "$T/$name.ours.txt" | head -20 >&2
    fi
    # The comparison must be about something: samples were printed.  Not
    # for threadcreate: its samples have no stack, and pprof's reports
    # (-raw included) drop such samples; test_proto checks their values.
    [ "$name" = threadcreate ] ||
        check "$name: canonical text has samples" \
            test "$(grep -c ' | ' "$T/$name.go.txt")" -gt 0
}

for type in cpu heap block mutex goroutine threadcreate; do
    same_as_go "$type" "$FIXTURES/${type}"_*.pb.gz
done

# A mixed set with repeats (cpu_000 three times), and a plain protobuf.
gzip -dc "$FIXTURES/cpu_007.pb.gz" >"$T/cpu_007.pb"
same_as_go mixed "$FIXTURES/cpu_000.pb.gz" "$FIXTURES/cpu_001.pb.gz" \
    "$FIXTURES/cpu_000.pb.gz" "$T/cpu_007.pb" "$FIXTURES/cpu_002.pb.gz" \
    "$FIXTURES/cpu_000.pb.gz"
same_as_go heap_repeat "$FIXTURES/heap_010.pb.gz" "$FIXTURES/heap_000.pb.gz" \
    "$FIXTURES/heap_010.pb.gz"
same_as_go single "$FIXTURES/cpu_005.pb.gz"

# String labels (pprof.Do: user=alice|bob, k=0|1) and inlined frames: CPU
# profiles of a small Go program, kept in tests/data.
same_as_go labels "$TESTS_DIR"/data/cpu_labels_*.pb.gz "$TESTS_DIR/data/cpu_labels_1.pb.gz"
check "labels: the label samples are compared" \
    grep -q 'user:\[bob\]' "$T/labels.ours.txt"

# The same file twice: every sample's values doubled, the stacks unchanged.
"$PROFEFS" merge "$FIXTURES/cpu_003.pb.gz" >"$T/once.pb.gz"
"$PROFEFS" merge "$FIXTURES/cpu_003.pb.gz" "$FIXTURES/cpu_003.pb.gz" >"$T/twice.pb.gz"
canon "$T/once.pb.gz" >"$T/once.txt"
canon "$T/twice.pb.gz" >"$T/twice.txt"
doubled=$(python3 - "$T/once.txt" "$T/twice.txt" <<'EOF'
import sys
once = [l for l in open(sys.argv[1]) if " | " in l]
twice = [l for l in open(sys.argv[2]) if " | " in l]
def split(l):
    vals, rest = l.split(" | ", 1)
    return [int(v) for v in vals.split()], rest
a = sorted(split(l) for l in once)
b = sorted(split(l) for l in twice)
ok = len(a) == len(b) > 0 and all(
    [2 * v for v in va] == vb and ra == rb for (va, ra), (vb, rb) in zip(a, b))
print("doubled" if ok else "not doubled: %d vs %d samples" % (len(a), len(b)))
EOF
)
assert_eq "same file twice doubles every sample" doubled "$doubled"
assert_eq "same file twice: period type and period unchanged" \
    "$(grep -E '^Period' "$T/once.txt")" "$(grep -E '^Period' "$T/twice.txt")"

# go tool pprof opens our output and sees the program's functions.
top=$(go tool pprof -top "$T/cpu.ours.pb.gz" 2>&1)
assert_contains "go tool pprof -top reads the merge" "$top" "flat%"
assert_contains "go tool pprof -top shows main.work" "$top" "main.work"
assert_eq "our output is gzip" "1f8b" "$(head -c 2 "$T/cpu.ours.pb.gz" | od -An -tx1 | tr -d ' \n')"

t_done
