#!/usr/bin/env bash
# kubernetes.sh — the Kubernetes examples (deploy/kubernetes/) agree with the
# image and the command line: tests/tools/check_deploy.py parses them with
# python3-yaml and checks image, args, environment, ports, probes and user
# against the Containerfile and `profefs serve --help`; then the single
# node's args run for real (data and address moved into the test's temp
# dir) and the S3 nodes' args must parse and, on radosgw (tests/tools/rgw.sh)
# serving the manifest's bucket, store and list a profile.
. "$TESTS_DIR/lib.sh"
t_init
REPO=$(cd "$TESTS_DIR/.." && pwd)
PY=/usr/bin/python3     # Debian's, with python3-yaml

"$PROFEFS" serve --help >"$T/help.txt"
if ! "$PY" "$TESTS_DIR/tools/check_deploy.py" "$REPO" "$T/help.txt" >"$T/checks.txt" 2>"$T/checks.err"; then
    fail "check_deploy.py failed: $(tail -n 5 "$T/checks.err")"
fi
while IFS= read -r line; do
    case "$line" in
        "ok "*) ok ;;
        "FAIL "*) fail "${line#FAIL }" ;;
    esac
done <"$T/checks.txt"
check "check_deploy.py made at least 40 checks" test "$(grep -c '^ok \|^FAIL ' "$T/checks.txt")" -ge 40

# args_of SHAPE: the container args check_deploy.py printed for SHAPE, one per line.
args_of() { grep "^args $1	" "$T/checks.txt" | cut -f2- | tr '\t' '\n'; }

# run_args LOGNAME DATA ARG...: starts profefs with a manifest's ARGs, --addr
# moved to a free loopback port and, if DATA is not empty, --data to DATA.
# Sets URL, SERVER_PID, SERVER_LOG; fails the check if it does not answer.
run_args() {
    local log="$T/$1.log" data=$2 port i run=()
    shift 2
    local args=("$@")
    port=$(free_port)
    for ((i = 0; i < ${#args[@]}; i++)); do
        case "${args[$i]}" in
            --addr) run+=(--addr "127.0.0.1:$port"); i=$((i + 1)) ;;
            --data) run+=(--data "${data:-${args[$((i + 1))]}}"); i=$((i + 1)) ;;
            *) run+=("${args[$i]}") ;;
        esac
    done
    "$PROFEFS" "${run[@]}" 2>"$log" &
    SERVER_PID=$!
    SERVER_LOG=$log
    T_PIDS+=("$SERVER_PID")
    T_LOGS+=("$log")
    URL="http://127.0.0.1:$port"
    wait_http "$URL/api/0/version" 30 && return 0
    fail "profefs ${run[*]} did not start: $(tail -n 5 "$log")"
    return 1
}

# ---- the single node's args, run for real ---------------------------------------------------
mapfile -t ARGS < <(args_of single-node)
check "single-node args found" test "${#ARGS[@]}" -ge 5
if run_args sts "$T/data" "${ARGS[@]}"; then
    http GET "$URL/api/0/version"
    assert_eq "the StatefulSet's args serve /api/0/version (the probes' path)" 200 "$HTTP_STATUS"
    assert_contains "version answer" "$HTTP_BODY" '"version"'
fi
stop_server TERM

# ---- the S3 nodes' args parse (--help last: every option before it is parsed) ------------------
mapfile -t ARGS < <(args_of s3-nodes)
check "s3-nodes args found" test "${#ARGS[@]}" -ge 5
out=$("$PROFEFS" "${ARGS[@]}" --help 2>&1); rc=$?
assert_eq "profefs ${ARGS[*]} parses (exit status of --help after them)" 0 "$rc"
assert_contains "and prints serve's help" "$out" "Usage: profefs serve"

# ---- and run for real on radosgw, with the manifest's bucket and prefix -----------------------
check "serve --help documents S3 mode" grep -q 's3://' "$T/help.txt"
DATA_ARG=""
for ((i = 0; i < ${#ARGS[@]}; i++)); do [ "${ARGS[$i]}" = --data ] && DATA_ARG=${ARGS[$((i + 1))]}; done
BUCKET=${DATA_ARG#s3://}; BUCKET=${BUCKET%%/*}
RGW_DIR="$T/rgw"
trap 'bash "$TESTS_DIR/tools/rgw.sh" stop "$RGW_DIR" >/dev/null 2>&1; t_cleanup' EXIT
if ! RGW_BUCKET=$BUCKET bash "$TESTS_DIR/tools/rgw.sh" start "$RGW_DIR" >/dev/null 2>"$T/rgw.log"; then
    fail "radosgw did not start: $(tail -n 5 "$T/rgw.log")"
else
    . "$RGW_DIR/env"     # AWS_* as the Deployment's env would set them
    assert_eq "radosgw serves the manifest's bucket" "$BUCKET" "$PROFEFS_S3_BUCKET"
    if run_args s3 "" "${ARGS[@]}"; then
        id=$(ingest "$FIXTURES/cpu_000.pb.gz" k8s cpu)
        http GET "$URL/api/0/profiles?service=k8s&type=cpu&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
        assert_eq "the Deployment's args store and list a profile in $DATA_ARG" "$id" "$(json '" ".join(p["id"] for p in j["body"])')"
    fi
    stop_server TERM
fi

t_done
