#!/usr/bin/env bash
# datadir_lock.sh — one process per data directory (issue 13): beside a
# running `profefs serve`, a second serve (also --read-only) and a
# `profefs scrape --data` on the same directory exit 1 with an error naming
# the serving process's pid, and store nothing; the first server keeps
# serving; once it stopped, the directory opens again.  The README's way to
# scrape beside a server, `--to URL`, works while it runs.
. "$TESTS_DIR/lib.sh"
t_init

start_server || t_done
FIRST_PID=$SERVER_PID FIRST_URL=$URL
id=$(ingest "$FIXTURES/cpu_001.pb.gz" api cpu)
check "first server ingests" [ ${#id} = 20 ]

# refused NAME COMMAND...: COMMAND exits 1 quickly, naming the lock holder.
refused() {
    local name=$1 rc; shift
    timeout 20 "$@" >"$T/$name.out" 2>"$T/$name.err"; rc=$?
    assert_eq "$name: exit status" 1 "$rc"
    assert_contains "$name: error names the holder" "$(cat "$T/$name.err")" \
        "data directory $T/data is in use by process $FIRST_PID (lock file $T/data/profefs.lock)"
    check "$name: no sanitizer report" sanitizer_clean "$T/$name.err"
}
refused serve2 "$PROFEFS" serve --data "$T/data" --addr "127.0.0.1:$(free_port)"
refused serve_ro "$PROFEFS" serve --data "$T/data" --read-only --addr "127.0.0.1:$(free_port)"
refused scrape_data "$PROFEFS" scrape --once --target http://127.0.0.1:1 \
    --service api --data "$T/data"

# The README's scrape beside a server: through it.  A target that does not
# answer fails the scrape, not the store.
timeout 60 "$PROFEFS" scrape --once --target "http://127.0.0.1:$(free_port)" \
    --service api --types heap --to "$FIRST_URL" >"$T/scrape_to.out" 2>"$T/scrape_to.err"
assert_eq "scrape --to beside the server: the scrape fails, not the lock" 1 "$?"
check "scrape --to: no lock error" bash -c "! grep -q 'in use by' '$T/scrape_to.err'"

http GET "$FIRST_URL/api/0/profiles/$id"
assert_eq "first server still serves" 200 "$HTTP_STATUS"
stop_server

# Released on exit, and after kill -9 (the kernel drops the lock).
start_server || t_done
http GET "$URL/api/0/profiles/$id"
assert_eq "reopened after a clean stop" 200 "$HTTP_STATUS"
stop_server KILL
start_server || t_done
http GET "$URL/api/0/profiles/$id"
assert_eq "reopened after kill -9" 200 "$HTTP_STATUS"
stop_server
t_done
