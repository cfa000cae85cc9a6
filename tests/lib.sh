# tests/lib.sh — shared harness of the integration tests (sourced, bash).
#
# Each test script does:
#     . "$TESTS_DIR/lib.sh"
#     t_init                      # own temp dir $T, cleanup on exit
#     start_server [extra args]   # profefs serve on a free loopback port: $URL, $SERVER_PID
#     ... assertions (ok / fail / assert_eq / expect_status) ...
#     t_done                      # stops what is running, checks sanitizer output, exit code
#
# Any daemon's stderr log that contains sanitizer output fails the test.
# Everything listens on 127.0.0.1 only and is stopped by pid.
# Python parts of a test can import the modules of tests/tools (PYTHONPATH).

set -u
: "${PROFEFS:?PROFEFS must point to the profefs binary}"
: "${TESTS_DIR:?TESTS_DIR must point to tests/}"
FIXTURES="$TESTS_DIR/fixtures"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export PYTHONPATH="$TESTS_DIR/tools${PYTHONPATH:+:$PYTHONPATH}"

T_FAILS=0
T_CHECKS=0
T_PIDS=()
T_MOUNTS=()
T_LOGS=()

t_init() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/profefs-test.XXXXXX")
    trap t_cleanup EXIT
    trap 'exit 1' INT TERM
}

t_cleanup() {
    local pid m
    for pid in "${T_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    for m in "${T_MOUNTS[@]:-}"; do
        [ -n "$m" ] && mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
    done
    [ -n "${T:-}" ] && [ -z "${KEEP_TMP:-}" ] && rm -rf "$T"
}

ok()   { T_CHECKS=$((T_CHECKS + 1)); }
fail() { T_CHECKS=$((T_CHECKS + 1)); T_FAILS=$((T_FAILS + 1)); echo "FAIL: $*" >&2; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() { local d=$1; shift; if "$@"; then ok; else fail "$d"; fi; }

# assert_eq DESCRIPTION EXPECTED ACTUAL
assert_eq() {
    if [ "$2" == "$3" ]; then ok; else fail "$1: expected [$2], got [$3]"; fi
}

# assert_contains DESCRIPTION HAYSTACK NEEDLE
assert_contains() {
    case "$2" in *"$3"*) ok ;; *) fail "$1: [$3] not in [$2]" ;; esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# sanitizer_clean LOG: no ASan/UBSan/LSan report in LOG.
sanitizer_clean() {
    ! grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$1"
}

# wait_http URL [SECONDS]: until URL answers at all.
wait_http() {
    local i n=$(( ${2:-20} * 10 ))
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# wait_mount DIR [SECONDS]
wait_mount() {
    local i n=$(( ${2:-20} * 10 ))
    for ((i = 0; i < n; i++)); do
        mountpoint -q "$1" && return 0
        sleep 0.1
    done
    return 1
}

# start_server [ARGS...]: profefs serve --data $T/data on a free port.
# Sets PORT, URL, SERVER_PID, SERVER_LOG. Pass --mount DIR to also mount.
SERVER_N=0
start_server() {
    SERVER_N=$((SERVER_N + 1))
    PORT=$(free_port)
    URL="http://127.0.0.1:$PORT"
    SERVER_LOG="$T/server.$SERVER_N.log"
    local a m=""
    for a in "$@"; do [ "$m" = next ] && m="$a"; [ "$a" = --mount ] && m=next; done
    [ -n "$m" ] && [ "$m" != next ] && { mkdir -p "$m"; T_MOUNTS+=("$m"); }
    "$PROFEFS" serve --data "${DATA:-$T/data}" --addr "127.0.0.1:$PORT" "$@" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    T_PIDS+=("$SERVER_PID")
    T_LOGS+=("$SERVER_LOG")
    if ! wait_http "$URL/api/0/version" 30; then
        fail "server did not start"; cat "$SERVER_LOG" >&2; return 1
    fi
    if [ -n "$m" ] && [ "$m" != next ] && ! wait_mount "$m" 10; then
        fail "mount $m did not appear"; cat "$SERVER_LOG" >&2; return 1
    fi
    return 0
}

# stop_server [SIGNAL]: stops the server by pid (default TERM), checks a clean
# exit (status 0 after TERM/INT) and no sanitizer report.
stop_server() {
    local sig=${1:-TERM} rc
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -"$sig" "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null; rc=$?
    if [ "$sig" = TERM ] || [ "$sig" = INT ]; then
        assert_eq "server exit status after SIG$sig" 0 "$rc"
    fi
    check "no sanitizer report in $SERVER_LOG" sanitizer_clean "$SERVER_LOG"
    SERVER_PID=""
}

# http METHOD URL [curl args...]: sets HTTP_STATUS and HTTP_BODY (file $T/body).
http() {
    local method=$1 url=$2; shift 2
    HTTP_STATUS=$(curl -s -o "$T/body" -w '%{http_code}' -X "$method" --max-time 60 "$@" "$url")
    HTTP_BODY=$(cat "$T/body" 2>/dev/null | tr -d '\0')
}

# ingest FILE SERVICE TYPE [LABELS] [CREATED_AT]: POSTs FILE, prints the id.
ingest() {
    local q="service=$2&type=$3"
    [ -n "${4:-}" ] && q="$q&labels=$4"
    [ -n "${5:-}" ] && q="$q&created_at=$5"
    curl -s --max-time 60 --data-binary @"$1" "$URL/api/0/profiles?$q" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["body"]["id"])'
}

# json FILTER: python expression on `j` (the JSON of $T/body), printed.
json() {
    python3 -c "import json,sys; j=json.load(open('$T/body')); print($1)"
}

# utc SECONDS: the unix time in the API's query form, 2006-01-02T15:04:05.
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S; }

# retime IN OUT SECONDS: OUT is a gzipped copy of the pprof IN with
# time_nanos (so the created_at profefs gives it) set to SECONDS; 0 removes it.
retime() { python3 "$TESTS_DIR/tools/pprof_retime.py" "$@"; }

# canon FILE: tests/canon.py's canonical text of a pprof file, to compare
# two profiles up to ids and ordering.
canon() { python3 "$TESTS_DIR/canon.py" "$1"; }

# same_profile DESC A B: the canonical texts of pprof files A and B are
# equal (and not empty).
same_profile() {
    canon "$2" >"$T/a.txt" 2>"$T/canon.err" && canon "$3" >"$T/b.txt" 2>>"$T/canon.err" ||
        { fail "$1: canon.py failed: $(cat "$T/canon.err")"; return; }
    if diff -u "$T/a.txt" "$T/b.txt" >"$T/diff.txt"; then
        check "$1: canonical text not empty" test -s "$T/a.txt"
    else
        fail "$1: profiles differ: $(head -n 20 "$T/diff.txt")"
    fi
}

# s3_start: a throw-away radosgw (tests/tools/rgw.sh) under $T/rgw, stopped
# on exit; exports its AWS_* environment and sets B (bucket), EP
# (endpoint) and DATA (s3://B).  Each test has its own (own ports, own
# state), so S3 tests may run side by side.  A start that fails is tried
# again, twice, on other free ports: between free_port and the daemon's
# bind another test may take the port.  Ends the test when it cannot start.
s3_start() {
    local try
    RGW="$TESTS_DIR/tools/rgw.sh"
    trap '"$RGW" stop "$T/rgw" >/dev/null 2>&1; t_cleanup' EXIT
    for try in 1 2 3; do
        "$RGW" start "$T/rgw" >"$T/rgw.out" 2>"$T/rgw.err" && break
        echo "s3_start: attempt $try failed: $(tail -3 "$T/rgw.err")" >&2
        [ "$try" = 3 ] && { fail "radosgw did not start: $(tail -5 "$T/rgw.err")"; t_done; }
    done
    . "$T/rgw/env"
    B=$PROFEFS_S3_BUCKET
    EP=$AWS_ENDPOINT_URL_S3
    DATA="s3://$B"
}

# s3curl METHOD KEY [curl args...]: a signed request on key KEY ("/..."),
# or on the bucket with KEY "" (the key percent-encoded as SigV4 wants it:
# curl signs the path as given).
s3curl() {
    local m=$1 k
    k=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/-_.~"))' "$2"); shift 2
    curl -s -m 30 --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$m" "$@" "$EP/$B$k"
}

# esc STRING: STRING percent-encoded for one URL path segment ('/' too),
# as clients send an S3 key in /api/0/profiles/<id>.
esc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# mount_remote DIR URL [ARGS...]: `profefs mount DIR --remote URL ARGS` in
# the background, log $T/remote.N.log; sets RPID.  Fails when no mount
# appears within 10 s.
MOUNT_N=0
mount_remote() {
    local dir=$1 url=$2; shift 2
    MOUNT_N=$((MOUNT_N + 1))
    mkdir -p "$dir"
    T_MOUNTS+=("$dir")
    "$PROFEFS" mount "$dir" --remote "$url" "$@" 2>"$T/remote.$MOUNT_N.log" &
    RPID=$!
    T_PIDS+=("$RPID")
    T_LOGS+=("$T/remote.$MOUNT_N.log")
    wait_mount "$dir" 10 || { fail "remote mount $dir did not appear"; cat "$T/remote.$MOUNT_N.log" >&2; return 1; }
}

# db_file [DIR]: prints the store's SQLite file in DIR (default $DATA, else
# $T/data): the one file starting with SQLite's magic, not a -wal, -shm or
# -journal file.  Fails when there is none.
db_file() {
    local f
    for f in "${1:-${DATA:-$T/data}}"/*; do
        case "$f" in *-wal|*-shm|*-journal) continue ;; esac
        [ -f "$f" ] && head -c 15 "$f" 2>/dev/null | grep -q 'SQLite format 3' && { echo "$f"; return 0; }
    done
    return 1
}

# db_integrity FILE: prints SQLite's PRAGMA integrity_check of FILE on one
# line: "ok" when the database is sound.
db_integrity() {
    sqlite3 "$1" 'PRAGMA integrity_check' 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

# t_done: stop leftovers, check every log, print a summary, exit 0/1.
t_done() {
    [ -n "${SERVER_PID:-}" ] && stop_server TERM
    local l
    for l in "${T_LOGS[@]:-}"; do
        [ -n "$l" ] && [ -f "$l" ] && ! sanitizer_clean "$l" && { fail "sanitizer output in $l"; cat "$l" >&2; }
    done
    echo "$(basename "$0"): $T_CHECKS checks, $T_FAILS failed"
    if [ "$T_FAILS" -ne 0 ]; then
        for l in "${T_LOGS[@]:-}"; do [ -f "$l" ] && { echo "--- $l (tail)" >&2; tail -n 30 "$l" >&2; }; done
        exit 1
    fi
    exit 0
}

# ack_http_client C SERVICE [ERRORS]: for crash-style tests (crash.sh,
# powercut.sh).  POSTs the fixtures of the array FILES in turn to the URL
# in $T/url as SERVICE with labels client=hC,seq=N; each 200 appends
# "SOURCE<TAB>JSON answer" to $ACK/http.C (what tools/ack_verify.py
# checks).  With ERRORS, any status but 200 and 000 (server down) appends
# "STATUS<TAB>SOURCE<TAB>ANSWER" to that file.  Runs until killed.
ack_http_client() {
    local c=$1 svc=$2 errors=${3:-} n=0 f type url out code
    while :; do
        f=${FILES[$(( (n * 7 + c) % ${#FILES[@]} ))]}
        type=$(basename "$f"); type=${type%%_*}
        url=$(cat "$T/url" 2>/dev/null)
        out=$(curl -s --max-time 15 -w '\n%{http_code}' --data-binary @"$f" \
              "$url/api/0/profiles?service=$svc&type=$type&labels=client%3Dh$c,seq%3D$n")
        code=${out##*$'\n'}
        out=${out%$'\n'*}
        out=${out//$'\n'/}
        case "$code" in
            200) printf '%s\t%s\n' "$f" "$out" >> "$ACK/http.$c" ;;
            000) sleep 0.05 ;;
            *)   [ -n "$errors" ] && printf '%s\t%s\t%s\n' "$code" "$f" "$out" >> "$errors"
                 sleep 0.05 ;;
        esac
        n=$((n + 1))
    done
}
