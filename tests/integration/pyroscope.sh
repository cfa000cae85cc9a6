#!/usr/bin/env bash
# tests/integration/pyroscope.sh — the doors of Pyroscope's agents (issue
# 20): a real SDK (@pyroscope/nodejs from npm) pushes wall and heap
# profiles to /ingest and the merged wall profile names the script's hot
# function in `go tool pprof`; /ingest in folded, lines, raw pprof and
# multipart pprof; the Connect push in application/proto and
# application/json; every bad input answered 4xx in the door's own shape,
# nothing stored, the server up and clean under the sanitizers.
. "$TESTS_DIR/lib.sh"
t_init
export PPROF_TMPDIR=$T/pprof
# this test runs python ~100 times (json, canon): a version manager's shim
# in front of the system's python costs more than the rest of the test
[ -x /usr/bin/python3 ] && python3() { /usr/bin/python3 "$@"; }
NOW=$(date +%s)
ANY="from=0&to=9999999999"

start_server --max-body 1M || t_done

# count SERVICE TYPE [LABELS]: profiles listed
count() {
    http GET "$URL/api/0/profiles?service=$1&type=$2&$ANY${3:+&labels=$3}"
    if [ "$HTTP_STATUS" = 200 ]; then json 'len(j["body"])'; else echo 0; fi
}
# stacks FILE: "VALUES | leaf < ... < root" lines of a pprof, sorted
stacks() {
    canon "$1" | awk -F' [|] ' '/ \| / { s = $2; gsub(/0x0@ /, "", s); gsub(/::0/, "", s); print $1 " | " s }' | sort
}
# post PATH BODY-FILE [curl args]: POST with HTTP_STATUS / HTTP_BODY
post() { local p=$1 f=$2; shift 2; http POST "$URL$p" --data-binary @"$f" "$@"; }

# ---- folded ------------------------------------------------------------------------------------
printf 'main;work;hot 30\nmain;work;hot 12\r\n\nmain;idle 5\n' > "$T/folded.txt"
post "/ingest?name=fold.app.cpu%7Benv%3Dprod%7D&from=$((NOW - 10))&until=$NOW&sampleRate=100&spyName=gospy" "$T/folded.txt"
assert_eq "folded: 200" 200 "$HTTP_STATUS"
assert_eq "folded: service, type, labels" "fold.app cpu env=prod,pyroscope_spy=gospy" \
    "$(json 'j["body"]["service"] + " " + j["body"]["type"] + " " + ",".join(l["key"] + "=" + l["value"] for l in j["body"]["labels"])')"
assert_eq "folded: created_at is from" "$(utc $((NOW - 10)))Z" "$(json 'j["body"]["created_at"]')"
id=$(json 'j["body"]["id"]')
curl -s -o "$T/folded.pb.gz" "$URL/api/0/profiles/$id"
# the call tree it was built from, as Go's cpu profile: samples and
# nanoseconds at 100 Hz
assert_eq "folded: the stacks, summed, in go tool pprof" \
"5 50000000 | idle < main
42 420000000 | hot < work < main" "$(stacks "$T/folded.pb.gz" | sort -n)"
top=$(go tool pprof -top "$URL/api/0/profiles/merge?service=fold.app&type=cpu&$ANY" 2>&1)
assert_contains "folded: the merge opens in go tool pprof" "$top" "420ms 89.36% 89.36%      420ms 89.36%  hot"

# ---- lines ---------------------------------------------------------------------------------------
printf 'a;b\na;b\na;c\n' > "$T/lines.txt"
post "/ingest?name=lines.app.wall&format=lines&from=$NOW" "$T/lines.txt"
assert_eq "lines: 200" 200 "$HTTP_STATUS"
assert_eq "lines: type wall" "lines.app wall" "$(json 'j["body"]["service"] + " " + j["body"]["type"]')"
curl -s -o "$T/lines.pb.gz" "$URL/api/0/profiles/$(json 'j["body"]["id"]')"
assert_eq "lines: one sample per line" "1 10000000 | c < a
2 20000000 | b < a" "$(stacks "$T/lines.pb.gz" | sort -n)"
# a type name of no kind: other, with its name kept as a label
post "/ingest?name=lines.app.exceptions&format=lines&units=objects" "$T/lines.txt"
assert_eq "unknown type: other + sample_type" "other sample_type=exceptions" \
    "$(json 'j["body"]["type"] + " " + ",".join(l["key"] + "=" + l["value"] for l in j["body"]["labels"])')"

# ---- pprof: raw and multipart ----------------------------------------------------------------------
post "/ingest?name=raw.app%7Bk%3Dv%7D&format=pprof&spyName=gospy" "$FIXTURES/cpu_005.pb.gz" -H 'Content-Type: application/octet-stream'
assert_eq "raw pprof: cpu from its sample types" "200 raw.app cpu" "$HTTP_STATUS $(json 'j["body"]["service"] + " " + j["body"]["type"]')"
curl -s -o "$T/raw.pb.gz" "$URL/api/0/profiles/$(json 'j["body"]["id"]')"
check "raw pprof: stored as sent" cmp -s "$T/raw.pb.gz" "$FIXTURES/cpu_005.pb.gz"
echo '{"contentions":{"units":"lock_samples","display-name":"mutex_count"},"delay":{"units":"lock_nanoseconds","display-name":"mutex_duration"}}' > "$T/stc.json"
http POST "$URL/ingest?name=multi.app%7Bteam%3Da%7D&format=pprof" \
    -F "profile=@$FIXTURES/mutex_005.pb.gz;filename=profile.pprof" -F "sample_type_config=@$T/stc.json;filename=stc.json"
assert_eq "multipart: mutex by its sample_type_config" "200 multi.app mutex" "$HTTP_STATUS $(json 'j["body"]["service"] + " " + j["body"]["type"]')"
# without the config, Go's contention profile is neither: other
http POST "$URL/ingest?name=multi.app&format=pprof" -F "profile=@$FIXTURES/block_005.pb.gz"
assert_eq "multipart: no config, other + sample_type" "200 other sample_type=delay" \
    "$HTTP_STATUS $(json 'j["body"]["type"] + " " + ",".join(l["key"] + "=" + l["value"] for l in j["body"]["labels"])')"
http POST "$URL/ingest?name=multi.app&format=pprof" -F "profile=@$FIXTURES/heap_005.pb.gz"
assert_eq "multipart: heap" "200 heap" "$HTTP_STATUS $(json 'j["body"]["type"]')"

# ---- Connect push: application/proto and application/json --------------------------------------------
push() { python3 "$TESTS_DIR/tools/pyroscope_push.py" "$@"; }
push proto "$T/push.bin" "__name__=process_cpu,service_name=push.app,region=eu,__session_id__=abc" \
    "$FIXTURES/cpu_001.pb.gz" "$FIXTURES/cpu_002.pb.gz"
post /push.v1.PusherService/Push "$T/push.bin" -H 'Content-Type: application/proto' -D "$T/headers"
assert_eq "push proto: 200, an empty PushResponse" "200 0" "$HTTP_STATUS $(stat -c %s "$T/body")"
assert_contains "push proto: answered as proto" "$(tr -d '\r' < "$T/headers")" "Content-Type: application/proto"
assert_eq "push proto: two profiles, __session_id__ dropped" 2 "$(count push.app cpu region=eu)"
http GET "$URL/api/0/profiles?service=push.app&type=cpu&$ANY"
assert_eq "push proto: labels" "region=eu" "$(json '",".join(l["key"] + "=" + l["value"] for l in j["body"][0]["labels"])')"
push json "$T/push.json" "__name__=wall,service_name=push.json,host=h1" "$FIXTURES/cpu_003.pb.gz"
post /push.v1.PusherService/Push "$T/push.json" -H 'Content-Type: application/json'
assert_eq "push json: 200 {}" "200 {}" "$HTTP_STATUS $HTTP_BODY"
push json "$T/push2.json" "__name__=memory,service_name=push.json,host=h1" "$FIXTURES/heap_010.pb.gz"
post /push.v1.PusherService/Push "$T/push2.json" -H 'Content-Type: application/json; charset=utf-8'
assert_eq "push json: memory is heap" "200 1" "$HTTP_STATUS $(count push.json heap host=h1)"
# the pushed profile merges, fetched and opened like any other
top=$(go tool pprof -top "$URL/api/0/profiles/merge?service=push.app&type=cpu&$ANY" 2>&1)
assert_contains "push: the merge opens in go tool pprof" "$top" "Type: cpu"
gzip -c "$T/push.bin" > "$T/push.bin.gz"
post /push.v1.PusherService/Push "$T/push.bin.gz" -H 'Content-Type: application/proto' -H 'Content-Encoding: gzip'
assert_eq "push proto, gzip-encoded: 200, stored once (the same profiles)" "200 2" "$HTTP_STATUS $(count push.app cpu region=eu)"
same=$(count push.app cpu)
post /push.v1.PusherService/Push "$T/push.bin" -H 'Content-Type: application/proto'
assert_eq "push: a retry stores nothing more (idempotent)" "200 $same" "$HTTP_STATUS $(count push.app cpu)"

# ---- bad input: 4xx in the door's own shape, nothing stored ---------------------------------------
services() { http GET "$URL/api/0/services"; json 'len(j["body"])'; }
before=$(services)
bad_ingest() { # DESC STATUS NEEDLE QUERY FILE [curl args]
    local d=$1 st=$2 needle=$3 q=$4 f=$5; shift 5
    post "/ingest?$q" "$f" "$@"
    assert_eq "$d: status" "$st" "$HTTP_STATUS"
    assert_contains "$d: message" "$HTTP_BODY" "$needle"
}
bad_ingest "no name" 400 'missing \"name\"' "format=folded" "$T/folded.txt"
bad_ingest "bad name" 400 "unclosed" "name=x.cpu%7Ba%3D1" "$T/folded.txt"
bad_ingest "unknown format" 400 "unsupported format" "name=x&format=jfr" "$T/folded.txt"
bad_ingest "bad sampleRate" 400 "invalid sampleRate" "name=x&sampleRate=0" "$T/folded.txt"
printf 'a;b 1\na;b\n' > "$T/novalue.txt"
bad_ingest "folded without a value" 400 "line 2: no value" "name=x.cpu" "$T/novalue.txt"
printf 'a;;b 1\n' > "$T/emptyframe.txt"
bad_ingest "folded with an empty frame" 400 "empty frame" "name=x.cpu" "$T/emptyframe.txt"
head -c 3000 /dev/urandom > "$T/garbage.bin"
bad_ingest "pprof garbage" 400 "malformed profile" "name=x&format=pprof" "$T/garbage.bin"
head -c 500 "$FIXTURES/cpu_005.pb.gz" > "$T/trunc.pb.gz"
bad_ingest "pprof truncated gzip" 400 "malformed profile" "name=x&format=pprof" "$T/trunc.pb.gz"
printf -- '--XYZ\r\nContent-Disposition: form-data; name="profile"\r\n\r\nabc' > "$T/mp.bin"
bad_ingest "multipart without an end" 400 "malformed multipart" "name=x&format=pprof" "$T/mp.bin" -H 'Content-Type: multipart/form-data; boundary=XYZ'
printf -- '--XYZ\r\nContent-Disposition: form-data; name="other"\r\n\r\nabc\r\n--XYZ--\r\n' > "$T/mp2.bin"
bad_ingest "multipart without a profile" 400 'without a \"profile\" field' "name=x&format=pprof" "$T/mp2.bin" -H 'Content-Type: multipart/form-data; boundary=XYZ'
bad_ingest "multipart without a boundary" 400 "boundary" "name=x&format=pprof" "$T/mp2.bin" -H 'Content-Type: multipart/form-data'
head -c 1200000 /dev/zero > "$T/big.bin"
bad_ingest "body over the limit" 413 "too large" "name=x" "$T/big.bin"
# a Go cpu profile sent as something else is refused by the store's check
push proto "$T/mism.bin" "__name__=goroutines,service_name=bad.app" "$FIXTURES/cpu_004.pb.gz"

bad_push() { # DESC STATUS CODE NEEDLE FILE CONTENT-TYPE
    post /push.v1.PusherService/Push "$5" -H "Content-Type: $6"
    assert_eq "push, $1: status" "$2" "$HTTP_STATUS"
    assert_eq "push, $1: Connect error code" "$3" "$(json 'j["code"]' 2>/dev/null)"
    assert_contains "push, $1: message" "$(json 'j["message"]' 2>/dev/null)" "$4"
}
bad_push "wrong content type" 415 unimplemented "application/proto or application/json" "$T/push.bin" "text/plain"
bad_push "garbage protobuf" 400 invalid_argument "not a PushRequest" "$T/garbage.bin" application/proto
post /push.v1.PusherService/Push "$T/garbage.bin" -H 'Content-Type: application/proto' -H 'Content-Encoding: gzip'
assert_eq "push, a gzip body that is not gzip: 400 invalid_argument" "400 invalid_argument" "$HTTP_STATUS $(json 'j["code"]')"
post /push.v1.PusherService/Push "$T/push.bin" -H 'Content-Type: application/proto' -H 'Content-Encoding: br'
assert_eq "push, another encoding: 501 unimplemented" "501 unimplemented" "$HTTP_STATUS $(json 'j["code"]')"
printf '{"series":[{"labels":' > "$T/bad.json"
bad_push "bad JSON" 400 invalid_argument "not JSON" "$T/bad.json" application/json
printf '{"series":[{"labels":[{"name":"service_name","value":"x"}],"samples":[{"rawProfile":"@@@"}]}]}' > "$T/b64.json"
bad_push "bad base64" 400 invalid_argument "not base64" "$T/b64.json" application/json
push proto "$T/nosvc.bin" "__name__=process_cpu,region=eu" "$FIXTURES/cpu_001.pb.gz"
bad_push "no service_name" 400 invalid_argument "no service_name" "$T/nosvc.bin" application/proto
push proto "$T/notpprof.bin" "__name__=process_cpu,service_name=bad.app" "$T/garbage.bin"
bad_push "a sample that is no pprof" 400 invalid_argument "malformed profile" "$T/notpprof.bin" application/proto
bad_push "a cpu profile named goroutines" 400 invalid_argument "sample types do not match" "$T/mism.bin" application/proto
bad_push "body over the limit" 413 resource_exhausted "too large" "$T/big.bin" application/proto
assert_eq "nothing stored by the bad requests" "$before" "$(services)"
http GET "$URL/api/0/version"
assert_eq "the server is up" 200 "$HTTP_STATUS"

# ---- the memory budget, in Connect's shape: a push that cannot fit even alone is 413 (a
# client must not retry it), one that must wait for others' bytes 503 ---------------------------
# (a JSON push takes its body and then its decoded copy, twice the body)
MAIN_URL=$URL MAIN_PID=$SERVER_PID
DATA=$T/data2 start_server --max-body 1M --max-inflate 1M --max-memory 2M || t_done
head -c 560000 /dev/urandom > "$T/big.raw"     # a 747 KB body: 3 x 747 KB > 2 MiB
push json "$T/bigpush.json" "__name__=process_cpu,service_name=big.app" "$T/big.raw"
bad_push "more than the whole memory budget" 413 resource_exhausted "more than the memory budget" \
    "$T/bigpush.json" application/json
# (it was 503 "retry later", which a client retried for ever)
# a slow upload (900 KB announced, sent at 150 KB/s) holds 900 KB of the budget for 6 s
head -c 900000 /dev/urandom > "$T/slow.bin"
curl -s -o /dev/null --limit-rate 150K --max-time 60 --data-binary @"$T/slow.bin" \
    "$URL/api/0/profiles?service=slow&type=cpu" & slow=$!
used() { curl -s "$URL/debug/metrics" | awk '$1 == "profefs_memory_used_bytes" {print $2}'; }
for _ in $(seq 1 50); do [ "$(used)" -ge 900000 ] 2>/dev/null && break; sleep 0.1; done
head -c 330000 /dev/urandom > "$T/mid.raw"     # a 440 KB body: 1.3 MiB, fits alone
push json "$T/midpush.json" "__name__=process_cpu,service_name=mid.app" "$T/mid.raw"
bad_push "while another request holds the budget" 503 unavailable "memory budget" \
    "$T/midpush.json" application/json
wait "$slow"
# once the budget is free the same push is decoded, and its random sample
# reaches the store's check
bad_push "once the budget is free: decoded, its sample checked" 400 invalid_argument \
    "malformed profile" "$T/midpush.json" application/json
http GET "$URL/api/0/version"
assert_eq "the small server is up" 200 "$HTTP_STATUS"
stop_server TERM
URL=$MAIN_URL SERVER_PID=$MAIN_PID

# ---- a real SDK: @pyroscope/nodejs ------------------------------------------------------------------
# Installed from npm into a cache this test owns (CI reaches the registry).
NPM_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/profefs-tests/pyroscope-nodejs-0.6.4
if [ ! -d "$NPM_DIR/node_modules/@pyroscope/nodejs" ]; then
    mkdir -p "$NPM_DIR"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent @pyroscope/nodejs@0.6.4 >"$T/npm.log" 2>&1) ||
        { fail "npm install @pyroscope/nodejs: $(tail -3 "$T/npm.log")"; t_done; }
fi
cat > "$T/app.js" <<'EOF'
// A small service profiled by Pyroscope's Node.js SDK for a few seconds.
const Pyroscope = require('@pyroscope/nodejs');
Pyroscope.init({
  serverAddress: process.env.PROFEFS_URL,
  appName: 'node.app',
  tags: { region: 'test' },
  flushIntervalMs: 1000,
  wall: { samplingDurationMs: 1000 },
});
Pyroscope.start();
function profefsHotLoop() {
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i) * Math.sin(i);
  return x;
}
const end = Date.now() + 3000;
(function tick() {
  if (Date.now() < end) { profefsHotLoop(); setImmediate(tick); }
  else Pyroscope.stop().then(() => process.exit(0));
})();
EOF
NODE_PATH=$NPM_DIR/node_modules PROFEFS_URL=$URL timeout 60 node "$T/app.js" >"$T/node.log" 2>&1
assert_eq "the Node.js app ran" 0 "$?"
walls=$(count node.app wall)
check "the SDK pushed wall profiles ($walls)" [ "$walls" -ge 2 ]
check "and heap profiles" [ "$(count node.app heap)" -ge 1 ]
http GET "$URL/api/0/profiles?service=node.app&type=wall&$ANY"
labels=$(json '",".join(l["key"] + "=" + l["value"] for l in j["body"][0]["labels"])')
assert_contains "SDK labels: its tags" "$labels" "region=test"
assert_contains "SDK labels: spyName" "$labels" "pyroscope_spy=nodespy"
assert_contains "SDK labels: the runtime" "$labels" "process.runtime.name=nodejs"
top=$(go tool pprof -top "$URL/api/0/profiles/merge?service=node.app&type=wall&$ANY" 2>&1)
assert_contains "go tool pprof: the merged wall profile" "$top" "Type: wall"
assert_contains "go tool pprof: names the hot function" "$top" "profefsHotLoop"
hot=$(printf '%s\n' "$top" | awk '/profefsHotLoop/ { sub(/%/, "", $2); print int($2); exit }')
check "the hot function has most of the wall time (${hot}%)" [ "${hot:-0}" -ge 30 ]

t_done
