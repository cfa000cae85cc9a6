#!/usr/bin/env bash
# tests/integration/cli_misc.sh — small command-line and API promises
# (issue 12, point 11): `profefs --version` prints the version; `serve
# --addr 127.0.0.1:0` logs the port it really got (and answers there);
# GET /api/0/profiles/<a>+<b> with one unknown id names it.
. "$TESTS_DIR/lib.sh"
t_init

out=$("$PROFEFS" --version 2>&1); rc=$?
assert_eq "profefs --version: exit status" 0 "$rc"
assert_contains "profefs --version: the version" "$out" "profefs 0."
assert_contains "profefs --version: the commit" "$out" "(commit "
assert_eq "profefs version says the same" "$out" "$("$PROFEFS" version 2>&1)"

"$PROFEFS" serve --data "$T/data" --addr 127.0.0.1:0 2>"$T/serve.log" &
PID=$!
T_PIDS+=("$PID")
T_LOGS+=("$T/serve.log")
for i in $(seq 1 100); do grep -q "serving" "$T/serve.log" && break; sleep 0.1; done
port=$(sed -n 's|.*serving .* on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$T/serve.log")
check "--addr 127.0.0.1:0 logs the real port ($port)" [ -n "$port" ] && [ "$port" != 0 ]
URL="http://127.0.0.1:$port"
check "the server answers at that port" wait_http "$URL/api/0/version" 10

id=$(ingest "$FIXTURES/cpu_001.pb.gz" api cpu)
unknown=00000000000000000000
http GET "$URL/api/0/profiles/$id+$unknown"
assert_eq "one unknown id of two: 404" 404 "$HTTP_STATUS"
assert_contains "the reply names the unknown id" "$HTTP_BODY" "$unknown"
http GET "$URL/api/0/profiles/$unknown"
assert_eq "a single unknown id: 404" 404 "$HTTP_STATUS"
http GET "$URL/api/0/profiles/$id+$id"
assert_eq "known ids merge" 200 "$HTTP_STATUS"
kill -TERM "$PID"; wait "$PID"
assert_eq "exit status after SIGTERM" 0 "$?"
t_done
