#!/usr/bin/env bash
# tests/integration/readme_fs.sh — the examples of README.md's "As a
# filesystem" section run as written on a fresh repository: every command
# of its sh blocks, in order, with /mnt/profiles the test's mount and /tmp
# the test's directory (holding app.pb.gz and heap.pb.gz), must succeed.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" || t_done
# profiles of now, as a user's would be (the examples merge now-1h..now)
retime "$FIXTURES/cpu_005.pb.gz" "$T/app.pb.gz" $(($(date +%s) - 60))
retime "$FIXTURES/heap_005.pb.gz" "$T/heap.pb.gz" $(($(date +%s) - 60))
export GOCACHE=$T/gocache GOPATH=$T/gopath HOME=$T PPROF_TMPDIR=$T

README="$TESTS_DIR/../README.md"
# The sh blocks between "### As a filesystem" and the next "###".
awk '/^### As a filesystem/ { on = 1; next } /^### / { on = 0 }
     on && /^```sh/ { b = 1; next } on && /^```/ { b = 0; next } on && b' "$README" |
    sed -e "s|/tmp/|$T/|g" -e "s|/tmp |$T |g" -e "s|/mnt/profiles|$MNT|g" > "$T/examples.sh"
n=$(grep -c . "$T/examples.sh")
check "README has filesystem examples ($n lines)" [ "$n" -ge 10 ]
# One shell runs them in order (a cd carries over); each failure is named.
sed 's/[[:space:]]\+#.*$//' "$T/examples.sh" | grep . | while IFS= read -r line; do
    printf '%s || echo "README example failed ($?): %s"\n' "$line" "${line//\"/\\\"}"
done > "$T/run.sh"
out=$(cd "$T" && bash "$T/run.sh" 2>&1 </dev/null)
assert_eq "every README filesystem example succeeds" "" "$(echo "$out" | grep 'README example failed')"
[ -n "$(echo "$out" | grep 'README example failed')" ] && echo "$out" >&2
stop_server
t_done
