#!/usr/bin/env bash
# scrape.sh — `profefs scrape` against a real Go program serving
# net/http/pprof (tests/goapp, built here with `go build`, offline):
# periodic scraping into a server (every type arrives, repeatedly, with the
# labels, and opens in `go tool pprof`), --once into a data directory read
# back by `profefs serve`, a config file with two targets, a dead target
# (retries, exit status), and a prompt stop in the middle of a cpu profile.
. "$TESTS_DIR/lib.sh"
t_init

if ! command -v go >/dev/null; then
    echo "scrape.sh: SKIP: no go toolchain"; exit 77
fi
export HOME="$T" GOCACHE="$T/gocache" GOPATH="$T/gopath" GOPROXY=off GOFLAGS=-mod=mod
(cd "$TESTS_DIR/goapp" && go build -o "$T/goapp" .) 2>"$T/gobuild.log"
if [ ! -x "$T/goapp" ]; then
    fail "go build of tests/goapp"; cat "$T/gobuild.log" >&2; t_done
fi

# start_goapp: a goapp on a free port; sets GOURL.
GOPIDS=()
start_goapp() {
    local port
    port=$(free_port)
    GOURL="http://127.0.0.1:$port"
    "$T/goapp" -addr "127.0.0.1:$port" 2>>"$T/goapp.log" &
    T_PIDS+=("$!")
    GOPIDS+=("$!")
    wait_http "$GOURL/debug/pprof/" 10 || fail "goapp did not start"
}
start_goapp
GOURL1=$GOURL
start_goapp
GOURL2=$GOURL

start_server || t_done
NOW=$(date -u +%s)
RANGE="from=$((NOW - 3600))&to=$((NOW + 3600))"

# count SERVICE TYPE [LABELS]: number of profiles listed over HTTP.
count() {
    local q="service=$1&type=$2&$RANGE"
    [ -n "${3:-}" ] && q="$q&labels=$3"
    http GET "$URL/api/0/profiles?$q"
    if [ "$HTTP_STATUS" = 200 ]; then json 'len(j["body"])'; else echo 0; fi
}

# ---- usage -------------------------------------------------------------------------
"$PROFEFS" scrape --help >"$T/help" 2>&1
assert_eq "scrape --help exit status" 0 "$?"
assert_contains "scrape --help" "$(cat "$T/help")" "Usage: profefs scrape --target URL --service NAME"
"$PROFEFS" scrape --target "$GOURL1" 2>"$T/usage.err"
assert_eq "scrape without --service: usage error" 2 "$?"
"$PROFEFS" scrape --target "$GOURL1" --service s --types cpu,gpu 2>/dev/null
assert_eq "scrape with a bad type: usage error" 2 "$?"

# ---- periodic scraping into a server -------------------------------------------------
TYPES="cpu heap goroutine mutex block"
SLOG="$T/scrape.log"
T_LOGS+=("$SLOG")
"$PROFEFS" scrape --target "$GOURL1" --service goapp --labels env=test,region=eu \
    --every 2s --seconds 1 --types cpu,heap,goroutine,mutex,block --to "$URL" 2>"$SLOG" &
SPID=$!
T_PIDS+=("$SPID")
# until every type has arrived at least twice (two rounds), at most 40 s
for ((i = 0; i < 400; i++)); do
    done_all=1
    for ty in $TYPES; do
        [ "$(count goapp "$ty")" -ge 2 ] || { done_all=0; break; }
    done
    [ $done_all = 1 ] && break
    sleep 0.1
done
t0=$(date +%s%N)
kill -TERM "$SPID"
wait "$SPID"
assert_eq "scrape exits 0 on SIGTERM" 0 "$?"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "scrape stopped within 3 s ($ms ms)" test "$ms" -lt 3000

for ty in $TYPES; do
    n=$(count goapp "$ty" "env=test,region=eu")
    check "$ty scraped at least twice with the labels (got $n)" test "$n" -ge 2
    assert_eq "$ty: labels of the stored profiles" '[{"key": "env", "value": "test"}, {"key": "region", "value": "eu"}]' \
        "$(json 'json.dumps(j["body"][0]["labels"])')"
    id=$(json 'j["body"][0]["id"]')
    curl -s -o "$T/$ty.pb.gz" "$URL/api/0/profiles/$id"
    go tool pprof -raw "$T/$ty.pb.gz" >"$T/$ty.raw" 2>"$T/$ty.pprof.err"
    assert_eq "go tool pprof opens the scraped $ty profile" 0 "$?"
    check "scraped $ty profile has samples" grep -qE '^ +[0-9]+' "$T/$ty.raw"
done
assert_contains "cpu sample type" "$(cat "$T/cpu.raw")" "samples/count cpu/nanoseconds"
assert_contains "mutex sample type" "$(cat "$T/mutex.raw")" "contentions/count delay/nanoseconds"
assert_contains "heap sample type" "$(cat "$T/heap.raw")" "inuse_space/bytes"
check "one log line per scrape: cpu ok" grep -qE "^scrape $GOURL1 cpu ok [0-9]+ [0-9]+ms service=[^ ]+ id=[0-9a-v]{20}$" "$SLOG"
check "one log line per scrape: mutex ok" grep -qE "^scrape $GOURL1 mutex ok [0-9]+ [0-9]+ms" "$SLOG"
check "no failed scrape logged" bash -c "! grep -E '^scrape .* (error|http-)' '$SLOG'"
# a 1 s cpu profile per 2 s round: rounds never overlap, so cpu lines are
# at least ~1 s apart and there are as many cpu lines as heap lines
ncpu=$(grep -c "^scrape $GOURL1 cpu " "$SLOG")
nheap=$(grep -c "^scrape $GOURL1 heap " "$SLOG")
check "one cpu scrape per round ($ncpu cpu, $nheap heap)" test "$ncpu" -ge 2 -a $((ncpu - nheap)) -le 1 -a $((nheap - ncpu)) -le 1

# ---- a stop in the middle of a long cpu profile is prompt -------------------------------
"$PROFEFS" scrape --target "$GOURL1" --service slow --types cpu --seconds 30 --to "$URL" 2>"$T/slow.log" &
SPID=$!
T_PIDS+=("$SPID")
T_LOGS+=("$T/slow.log")
sleep 1.5
t0=$(date +%s%N)
kill -INT "$SPID"
wait "$SPID"
assert_eq "scrape exits 0 on SIGINT" 0 "$?"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "SIGINT during a 30 s cpu profile stops within 3 s ($ms ms)" test "$ms" -lt 3000
check "the interrupted scrape is logged as stopped" grep -qE "^scrape $GOURL1 cpu stopped " "$T/slow.log"
assert_eq "nothing stored by the interrupted scrape" 0 "$(count slow cpu)"

# ---- config file with two targets -------------------------------------------------------------
cat >"$T/targets.conf" <<EOF
# two goapps
$GOURL1 service=cfg-a labels=team=a types=heap,goroutine every=1s
$GOURL2/debug/pprof service=cfg-b labels=team=b,tier=web types=goroutine,cpu,threadcreate seconds=1   # second
EOF
"$PROFEFS" scrape --config "$T/targets.conf" --to "$URL" --once 2>"$T/conf.log"
assert_eq "scrape --config --once exit status" 0 "$?"
T_LOGS+=("$T/conf.log")
assert_eq "cfg-a heap" 1 "$(count cfg-a heap team=a)"
assert_eq "cfg-a goroutine" 1 "$(count cfg-a goroutine team=a)"
assert_eq "cfg-a has no cpu" 0 "$(count cfg-a cpu)"
assert_eq "cfg-b goroutine" 1 "$(count cfg-b goroutine team=b,tier=web)"
assert_eq "cfg-b cpu" 1 "$(count cfg-b cpu team=b,tier=web)"
assert_eq "cfg-b threadcreate" 1 "$(count cfg-b threadcreate tier=web)"
check "second target scraped at its own URL" grep -qE "^scrape $GOURL2 cpu ok " "$T/conf.log"
printf '%s\n' "$GOURL1 service=x bogus=1" >"$T/bad.conf"
"$PROFEFS" scrape --config "$T/bad.conf" --to "$URL" --once 2>"$T/badconf.err"
assert_eq "bad config: usage error" 2 "$?"
assert_contains "bad config: file:line: reason" "$(cat "$T/badconf.err")" "$T/bad.conf:1: unknown key"

# ---- a dead target: retried with backoff, then a failure ---------------------------------------
dead="http://127.0.0.1:$(free_port)"
t0=$(date +%s%N)
"$PROFEFS" scrape --target "$dead" --service dead --types heap --to "$URL" --once 2>"$T/dead.log"
assert_eq "scrape --once of a dead target: exit status 1" 1 "$?"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq "dead target: 4 attempts logged" 4 "$(grep -cE "^scrape $dead heap error 0 " "$T/dead.log")"
check "dead target: backoff 1+2+4 s between attempts ($ms ms)" test "$ms" -ge 6500 -a "$ms" -lt 20000
T_LOGS+=("$T/dead.log")
check "dead target: the log line names the service" grep -qE "^scrape $dead heap error 0 [0-9]+ms service=dead " "$T/dead.log"

# ---- a target that answers an error: the log line says what it said --------------------------
"$PROFEFS" scrape --target "$GOURL1/nowhere" --service lost --types heap --to "$URL" --once 2>"$T/lost.log"
assert_eq "scrape --once of a path that is not there: exit status 1" 1 "$?"
check "HTTP error logged with the service and the target's answer" \
    grep -qE "^scrape $GOURL1/nowhere heap http-404 [0-9]+ [0-9]+ms service=lost \(404 page not found\)$" "$T/lost.log"
T_LOGS+=("$T/lost.log")

stop_server

# ---- --once into a data directory, read back by profefs serve -----------------------------------
"$PROFEFS" scrape --once --target "$GOURL2" --service direct --labels k=v \
    --types cpu,heap,goroutine --seconds 1 --data "$T/sdata" 2>"$T/direct.log"
assert_eq "scrape --once --data exit status" 0 "$?"
T_LOGS+=("$T/direct.log")
DATA="$T/sdata" start_server || t_done
http GET "$URL/api/0/services"
assert_eq "services of the scraped data directory" '["direct"]' "$(json 'json.dumps(j["body"])')"
for ty in cpu heap goroutine; do
    assert_eq "direct $ty stored once" 1 "$(count direct "$ty" k=v)"
done
curl -s -o "$T/direct.pb.gz" "$URL/api/0/profiles/merge?service=direct&type=cpu&$RANGE"
check "go tool pprof opens a merge of scraped data" bash -c "go tool pprof -raw '$T/direct.pb.gz' >/dev/null 2>&1"

kill "${GOPIDS[@]}"
wait "${GOPIDS[@]}" 2>/dev/null
t_done
