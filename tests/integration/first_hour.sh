#!/usr/bin/env bash
# tests/integration/first_hour.sh — what a new user hits in the first hour
# (issue 23), tried as they would, with the README's own commands where it
# has them:
#   1. a profile's time is the one inside it: yesterday's profile copied in
#      is not in merge/.../now-1h..now; the ENOENT is logged with what the
#      service holds, the HTTP 404 says the same, and the README says it
#      where ranges are introduced;
#   2. `mount --remote` lists what `serve --mount` lists (one default): a
#      profile of three days ago copied into it shows in its directory;
#   3. the README's container commands: podman with --format docker (the
#      health check), the COMMIT build argument, --user root first for FUSE
#      (container.sh builds and runs the image itself);
#   4. scripts/run builds only profefs; README says how long scripts/test
#      takes;
#   5. the README's radosgw recipe (Scale out), run as written: two nodes
#      over one bucket;
#   6. `printf x > f` fails at the write (EINVAL) and stores nothing; a
#      port in use leaves no data directory; a 300-byte service name is a
#      400 naming the limit; `version --help` is help; an unknown option is
#      one error line; the README's command summary has every option of
#      every --help.
# (df on the mount is checked in fuse_tools.sh.)
. "$TESTS_DIR/lib.sh"
t_init

README="$TESTS_DIR/../README.md"
SRC=$(cd "$TESTS_DIR/.." && pwd)
export GOCACHE=$T/gocache GOPATH=$T/gopath HOME=$T PPROF_TMPDIR=$T

# section TITLE: the README's text from the heading TITLE to the next one.
section() {
    awk -v t="$1" 'index($0, t) == 1 { on = 1; print; next } on && /^#/ { exit } on' "$README"
}

# ---- 1. time: the one inside the profile ---------------------------------------------------
MNT=$T/mnt
start_server --mount "$MNT" || t_done
day=$(( $(date +%s) - 86400 ))
retime "$FIXTURES/cpu_003.pb.gz" "$T/yesterday.pb.gz" "$day"
mkdir -p "$MNT/api/cpu"
check "cp of yesterday's profile" cp "$T/yesterday.pb.gz" "$MNT/api/cpu/"
stamp=$(date -u -d "@$day" +%Y%m%dT%H%M%SZ)
check "ls shows it under its own time ($stamp)" sh -c "ls '$MNT/api/cpu' | grep -q '^${stamp}_'"
out=$(cd "$MNT" && go tool pprof -top merge/api/cpu/now-1h..now 2>&1); rc=$?
check "go tool pprof of now-1h..now fails (exit $rc)" [ "$rc" != 0 ]
when=$(date -u -d "@$day" +%Y-%m-%dT%H:%M:%SZ)
check "the server logs the empty merge with what api holds" \
    grep -q "no such path /merge/api/cpu/now-1h..now: no cpu profiles of api from .* api holds 1 cpu profiles from $when to $when" "$SERVER_LOG"
http GET "$URL/api/0/profiles/merge?service=api&type=cpu&from=$(utc $(( $(date +%s) - 3600 )))&to=$(utc $(date +%s))"
assert_eq "HTTP: empty merge is a 404" 404 "$HTTP_STATUS"
assert_contains "HTTP: the 404 says what api holds" "$(json 'j["error"]')" "api holds 1 cpu profiles from $when to $when"
http GET "$URL/api/0/profiles?service=api&type=heap&from=2020-01-01T00:00:00&to=2020-01-02T00:00:00"
assert_contains "HTTP: an empty list says the type has none" "$(json 'j["error"]')" "api has no heap profiles at all"
section "### As a filesystem" > "$T/fs_section"
check "README's first range example says which time it selects" \
    sh -c "grep -m1 'merge/api/cpu/now-1h..now' '$T/fs_section' | grep -q 'time inside'"
check "README says a profile's time is the one inside it" grep -q "A profile's time is the one inside it" "$T/fs_section"

# ---- 6. small surprises ----------------------------------------------------------------------
out=$(printf x 2>&1 > "$MNT/api/cpu/f"); rc=$?
assert_eq "printf x > api/cpu/f: exit status 1" 1 "$rc"
assert_contains "printf x > api/cpu/f: the shell saw EINVAL" "$out" "Invalid argument"
check "the refusal is logged" grep -q "write /api/cpu/f: Invalid argument (not a profile" "$SERVER_LOG"
check "nothing stored for it" sh -c "[ \$(ls '$MNT/api/cpu' | grep -c .) = 1 ]"
check "a plain (not gzip) pprof is still taken" sh -c "zcat '$FIXTURES/cpu_004.pb.gz' > '$MNT/api/cpu/plain'"
long=$(printf 'a%.0s' $(seq 300))
http POST "$URL/api/0/profiles?service=$long&type=cpu" --data-binary @"$FIXTURES/cpu_005.pb.gz"
assert_eq "a 300-byte service name: 400" 400 "$HTTP_STATUS"
assert_contains "the 400 names the limit" "$(json 'j["error"]')" "longer than 255 bytes"
"$PROFEFS" serve --data "$T/second" --addr "127.0.0.1:$PORT" 2>"$T/inuse.log"; rc=$?
assert_eq "serve on a port in use: exit status 1" 1 "$rc"
assert_contains "it says so" "$(cat "$T/inuse.log")" "Address already in use"
check "and leaves no data directory behind" test ! -e "$T/second"
stop_server

out=$("$PROFEFS" version --help); rc=$?
assert_eq "version --help: exit status" 0 "$rc"
assert_contains "version --help is help" "$out" "Usage: profefs version"
for cmd in serve mount merge scrape; do
    out=$("$PROFEFS" $cmd --no-such-flag 2>&1); rc=$?
    assert_eq "$cmd --no-such-flag: exit status 2" 2 "$rc"
    assert_eq "$cmd --no-such-flag: one error line and the hint" \
        "profefs: $cmd: unknown option '--no-such-flag'|Try 'profefs $cmd --help'." "$(echo "$out" | paste -sd '|')"
done
section "### Command line" > "$T/summary"
for cmd in serve mount merge scrape; do
    # the summary's lines of cmd: "profefs cmd ..." and the indented ones after
    awk -v c="profefs $cmd " 'index($0, c) == 1 { on = 1; print; next } /^profefs / { on = 0 } on' \
        "$T/summary" > "$T/summary.$cmd"
    for o in $("$PROFEFS" $cmd --help | grep -oE '^ +(-[a-z], )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+'); do
        [ "$o" = --help ] && continue
        check "README's command summary has $cmd $o" grep -q -- "$o\b" "$T/summary.$cmd"
    done
done

# ---- 2. mount --remote: the same default as serve --mount -------------------------------------
start_server || t_done
RMNT=$T/rmnt
mount_remote "$RMNT" "$URL" || t_done
old=$(( $(date +%s) - 3 * 86400 ))
retime "$FIXTURES/heap_005.pb.gz" "$T/old.pb.gz" "$old"
mkdir -p "$RMNT/api/heap"
check "cp of a profile of three days ago through mount --remote" cp "$T/old.pb.gz" "$RMNT/api/heap/"
stamp=$(date -u -d "@$old" +%Y%m%dT%H%M%SZ)
check "ls of mount --remote shows it ($stamp)" sh -c "ls '$RMNT/api/heap' | grep -q '^${stamp}_'"
check "and the directory of day-old cpu profiles too" sh -c "ls '$RMNT/api/cpu' | grep -q ."
kill -TERM "$RPID"; wait "$RPID"
stop_server

# ---- 3 and 4: the README's container and scripts lines -----------------------------------------
ctr=$(section "## Run it in a container")
check "README's podman build makes a docker-format image (keeps HEALTHCHECK)" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^podman build --format docker .*--build-arg COMMIT='" _ "$ctr"
check "README's docker build passes COMMIT" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^docker build .*--build-arg COMMIT='" _ "$ctr"
check "README's first FUSE-in-a-container command runs as root" \
    sh -c "printf '%s\n' \"\$1\" | grep -m1 -- '--device /dev/fuse' | grep -q -- '--user root'" _ "$ctr"
check "scripts/image passes COMMIT and --format docker" \
    sh -c "grep -q -- '--format docker --build-arg COMMIT=' '$SRC/scripts/image'"
check "scripts/run compiles only profefs" grep -qx 'meson compile -C build profefs' "$SRC/scripts/run"
check "README says how long scripts/test takes" grep -q '^`scripts/test` takes about [0-9]* minutes' "$README"

# ---- 5. the README's radosgw recipe, as written -------------------------------------------------
cp "$FIXTURES/cpu_006.pb.gz" "$T/app.pb.gz"
p1=$(free_port); p2=$(free_port)
while [ "$p2" = "$p1" ]; do p2=$(free_port); done
section "### Scale out" | awk '/^To try it without a cloud account/ { on = 1 } on && /^```sh/ { b = 1; next } b && /^```/ { exit } b' |
    sed -e "s|/tmp/|$T/|g" -e "s|tests/tools/|$SRC/tests/tools/|g" -e "s|build/profefs|$PROFEFS|g" \
        -e "s|10101|$p1|g" -e "s|10102|$p2|g" -e 's/[[:space:]]\+#.*$//' > "$T/recipe.sh"
check "README has the radosgw recipe (6+ lines)" [ "$(grep -c . "$T/recipe.sh")" -ge 6 ]
# one shell, in order, stopping at a failure; node logs kept for the sanitizer check
{ echo 'set -e'; sed 's/ &$/ 2>>node.log \&/' "$T/recipe.sh"; } > "$T/recipe.run"
out=$(cd "$T" && bash "$T/recipe.run" 2>"$T/recipe.err"); rc=$?
T_LOGS+=("$T/node.log")
assert_eq "the recipe runs to its end" 0 "$rc"
# node 1's answer to the ingest, then node 2's list: both name the profile
assert_eq "node 2 lists the profile ingested on node 1" 2 "$(printf '%s' "$out" | grep -o '"service": *"api"' | wc -l)"
check "rgw.sh stop --purge left nothing" test ! -e "$T/rgw/ceph.conf"
[ "$rc" != 0 ] && { echo "$out"; cat "$T/recipe.err"; } >&2
t_done
