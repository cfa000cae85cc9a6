#!/usr/bin/env bash
# http_api.sh — every endpoint and every error of DESIGN.md's HTTP API table
# against a real `profefs serve`: status codes, JSON envelopes and fields,
# exact error strings, byte-identical raw profiles, label subset filters,
# limits, inclusive time ranges, traces, id merges, DELETE, 404/405/413,
# /debug/metrics counters and the per-request log line.
. "$TESTS_DIR/lib.sh"
t_init

start_server || t_done

# post FILE QUERY [curl args]: POST /api/0/profiles?QUERY with FILE as body
post() { local f=$1 q=$2; shift 2; http POST "$URL/api/0/profiles?$q" --data-binary @"$f" "$@"; }
# expect_error DESC STATUS MESSAGE: last reply is {"code":STATUS,"error":MESSAGE}
expect_error() {
    assert_eq "$1: status" "$2" "$HTTP_STATUS"
    assert_eq "$1: code" "$2" "$(json 'j["code"]' 2>/dev/null)"
    assert_eq "$1: error" "$3" "$(json 'j["error"]' 2>/dev/null)"
}
# expect_error_prefix DESC STATUS PREFIX
expect_error_prefix() {
    assert_eq "$1: status" "$2" "$HTTP_STATUS"
    assert_eq "$1: code" "$2" "$(json 'j["code"]' 2>/dev/null)"
    case "$(json 'j["error"]' 2>/dev/null)" in
        "$3"*) ok ;;
        *) fail "$1: error [$HTTP_BODY] does not start with [$3]" ;;
    esac
}
# ids: the ids of the list in the last reply, space separated
ids() { json '" ".join(p["id"] for p in j["body"])'; }
header() { grep -i "^$1:" "$T/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

POSTED=0      # successful ingests
POSTED_BYTES=0
DELETED=0
posted() { POSTED=$((POSTED + 1)); POSTED_BYTES=$((POSTED_BYTES + $(stat -c %s "$1"))); }

# ---- version, empty repository -------------------------------------------
http GET "$URL/api/0/version" -D "$T/headers"
assert_eq "version status" 200 "$HTTP_STATUS"
assert_eq "version content type" "application/json" "$(header Content-Type)"
assert_eq "version code" 200 "$(json 'j["code"]')"
assert_eq "version fields" "True" "$(json 'all(isinstance(j["body"][k], str) and j["body"][k] for k in ("version","commit","build_time"))')"
assert_contains "version is the binary's" "$("$PROFEFS" version 2>&1)" "$(json 'j["body"]["version"]')"

http GET "$URL/api/0/services"
expect_error_prefix "services of an empty store" 404 "nothing found"

# ---- ingest -------------------------------------------------------------------
CPU0="$FIXTURES/cpu_000.pb.gz"
CPU0_TIME=$(utc 1795556966)Z   # the fixture's own time_nanos
post "$CPU0" 'service=api&type=cpu&labels=region%3Deu%2Chost%3Da' -D "$T/headers"
assert_eq "ingest status" 200 "$HTTP_STATUS"
assert_eq "ingest content type" "application/json" "$(header Content-Type)"
assert_eq "ingest code" 200 "$(json 'j["code"]')"
ID_CPU0=$(json 'j["body"]["id"]')
posted "$CPU0"
check "ingest id is 20 base32hex characters" grep -qE '^[0-9a-v]{20}$' <<<"$ID_CPU0"
assert_eq "ingest type" cpu "$(json 'j["body"]["type"]')"
assert_eq "ingest service" api "$(json 'j["body"]["service"]')"
assert_eq "ingest labels sorted by key" '[{"key": "host", "value": "a"}, {"key": "region", "value": "eu"}]' "$(json 'json.dumps(j["body"]["labels"])')"
assert_eq "ingest created_at = time_nanos" "$CPU0_TIME" "$(json 'j["body"]["created_at"]')"
assert_eq "ingest body keys" "created_at id labels service type" "$(json '" ".join(sorted(j["body"]))')"

# created_at parameter: ignored when time_nanos is set, used when it is not
post "$FIXTURES/cpu_001.pb.gz" 'service=api&type=cpu&created_at=2020-01-01T00:00:00'
posted "$FIXTURES/cpu_001.pb.gz"
ID_CPU1=$(json 'j["body"]["id"]')
assert_eq "created_at param loses to time_nanos" "$(utc 1795556967)Z" "$(json 'j["body"]["created_at"]')"
retime "$FIXTURES/cpu_002.pb.gz" "$T/notime.pb.gz" 0
post "$T/notime.pb.gz" 'service=notime&type=cpu&created_at=2020-01-02T03:04:05'
posted "$T/notime.pb.gz"
assert_eq "created_at param without time_nanos" "2020-01-02T03:04:05Z" "$(json 'j["body"]["created_at"]')"
post "$T/notime.pb.gz" 'service=notime&type=cpu&created_at=1577934245'
posted "$T/notime.pb.gz"
assert_eq "created_at param as unix seconds" "2020-01-02T03:04:05Z" "$(json 'j["body"]["created_at"]')"
before=$(date -u +%s)
post "$T/notime.pb.gz" 'service=notime2&type=cpu'
posted "$T/notime.pb.gz"
after=$(date -u +%s)
got=$(json 'j["body"]["created_at"]')
got_s=$(date -u -d "$got" +%s)
check "created_at defaults to the ingest time ($got)" test "$got_s" -ge "$before" -a "$got_s" -le "$after"

# ingest errors
post "$CPU0" 'type=cpu';                 expect_error "ingest without service" 400 'bad request: missing "service"'
post "$CPU0" 'service=&type=cpu';        expect_error "ingest with empty service" 400 'bad request: missing "service"'
post "$CPU0" 'service=api';              expect_error "ingest without type" 400 'bad request: missing "type"'
post "$CPU0" 'service=merge&type=cpu';   expect_error "ingest into the reserved service merge" 400 'bad request: invalid service "merge": "merge" is reserved'
post "$CPU0" 'service=api&type=x';       expect_error "ingest with unknown type" 400 'bad request: unknown type "x"'
post "$CPU0" 'service=api&type=cpu&labels=novalue'
expect_error_prefix "ingest with bad labels" 400 'bad request: invalid labels'
post "$CPU0" 'service=api&type=cpu&created_at=yesterday'
expect_error_prefix "ingest with bad created_at" 400 'bad request: invalid created_at'
head -c 3000 /dev/urandom >"$T/garbage"
post "$T/garbage" 'service=api&type=cpu'
expect_error_prefix "ingest of garbage" 400 'malformed profile ('
head -c 1000 "$CPU0" >"$T/truncated.pb.gz"
post "$T/truncated.pb.gz" 'service=api&type=cpu'
expect_error_prefix "ingest of truncated gzip" 400 'malformed profile ('
post "$FIXTURES/mutex_000.pb.gz" 'service=api&type=mutex'
expect_error_prefix "ingest of a profile without samples" 400 'malformed profile ('
http POST "$URL/api/0/profiles?service=api&type=cpu"
expect_error_prefix "ingest of an empty body" 400 'malformed profile ('
# bytes that JSON cannot carry or C strings would cut
post "$CPU0" 'service=a%00b&type=cpu'
expect_error "ingest with a NUL in the service" 400 'bad request: invalid "service" (NUL byte or invalid UTF-8)'
post "$CPU0" 'service=%FF%FE&type=cpu'
expect_error "ingest with a non-UTF-8 service" 400 'bad request: invalid "service" (NUL byte or invalid UTF-8)'
post "$CPU0" 'service=api&type=cpu&labels=k%3D%25FF'
expect_error_prefix "ingest with a label not UTF-8 once unescaped" 400 'bad request: invalid labels'
post "$CPU0" 'service=caf%C3%A9&type=cpu&labels=city%3DM%C3%BCnchen'
assert_eq "ingest with UTF-8 service and labels" 200 "$HTTP_STATUS"
posted "$CPU0"
assert_eq "UTF-8 service echoed" "café München" "$(json 'j["body"]["service"] + " " + j["body"]["labels"][0]["value"]')"

# ---- raw get ---------------------------------------------------------------------
curl -s -D "$T/headers" -o "$T/raw" "$URL/api/0/profiles/$ID_CPU0"
check "raw get is byte-identical" cmp -s "$CPU0" "$T/raw"
assert_eq "raw get content type" "application/octet-stream" "$(header Content-Type)"
http GET "$URL/api/0/profiles/$ID_CPU0/"
assert_eq "raw get with a trailing slash" 200 "$HTTP_STATUS"
http GET "$URL/api/0/profiles/NOT-AN-ID"
expect_error "raw get of a malformed id" 400 'bad profile id "NOT-AN-ID"'
http GET "$URL/api/0/profiles/00000000000000000000"
expect_error_prefix "raw get of an unknown id" 404 "nothing found"
http GET "$URL/api/0/profiles/$ID_CPU0%00junk"
expect_error "raw get of an id followed by %00" 400 "bad request: NUL byte in the path"

# ---- traces: stored as is, never merged -------------------------------------------
head -c 20000 /dev/urandom >"$T/trace.bin"
post "$T/trace.bin" 'service=api&type=trace&created_at=2021-06-01T12:00:00'
assert_eq "trace ingest" 200 "$HTTP_STATUS"
posted "$T/trace.bin"
ID_TRACE=$(json 'j["body"]["id"]')
assert_eq "trace created_at from the parameter" "2021-06-01T12:00:00Z" "$(json 'j["body"]["created_at"]')"
curl -s -o "$T/raw" "$URL/api/0/profiles/$ID_TRACE"
check "trace returned byte-identical" cmp -s "$T/trace.bin" "$T/raw"
post "$T/trace.bin" 'service=api&type=trace&created_at=2021-06-01T12:00:01'
posted "$T/trace.bin"
ID_TRACE2=$(json 'j["body"]["id"]')
# a body of unknown length (chunked) that outgrows the first buffer
head -c 300000 /dev/urandom >"$T/trace_big.bin"
HTTP_STATUS=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -T - --max-time 60 \
    "$URL/api/0/profiles?service=chunked&type=trace&created_at=2021-06-01T12:00:00" <"$T/trace_big.bin")
assert_eq "chunked ingest" 200 "$HTTP_STATUS"
posted "$T/trace_big.bin"
curl -s -o "$T/raw" "$URL/api/0/profiles/$(json 'j["body"]["id"]')"
check "chunked ingest returned byte-identical" cmp -s "$T/trace_big.bin" "$T/raw"
http GET "$URL/api/0/profiles?service=api&type=trace&from=2021-06-01T12:00:00&to=2021-06-01T12:00:01"
assert_eq "find traces" "$ID_TRACE $ID_TRACE2" "$(ids)"
http GET "$URL/api/0/profiles/merge?service=api&type=trace&from=2021-06-01T00:00:00&to=2021-06-02T00:00:00"
assert_eq "merge of traces status" 405 "$HTTP_STATUS"
assert_eq "merge of traces code" 405 "$(json 'j["code"]')"
http GET "$URL/api/0/profiles/$ID_TRACE+$ID_TRACE2"
assert_eq "id merge of traces" 405 "$HTTP_STATUS"
MERGES=1   # the store was asked (and refused): counted in the merge histogram

# ---- find: time range edges ---------------------------------------------------------
T0=1700000000
for k in 0 1 2 3; do
    retime "$FIXTURES/cpu_00$k.pb.gz" "$T/r$k.pb.gz" $((T0 + 10 * k))
    post "$T/r$k.pb.gz" 'service=range&type=cpu'
    posted "$T/r$k.pb.gz"
    eval "R$k=\$(json 'j[\"body\"][\"id\"]')"
done
q="service=range&type=cpu"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 10)))&to=$(utc $((T0 + 20)))" -D "$T/headers"
assert_eq "find status" 200 "$HTTP_STATUS"
assert_eq "find content type" "application/json" "$(header Content-Type)"
assert_eq "find: from and to are inclusive" "$R1 $R2" "$(ids)"
assert_eq "find: created_at of the first" "$(utc $((T0 + 10)))Z" "$(json 'j["body"][0]["created_at"]')"
assert_eq "find: entries have every field" "created_at id labels service type" "$(json '" ".join(sorted(j["body"][0]))')"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 11)))&to=$(utc $((T0 + 19)))"
expect_error_prefix "find: one second inside each edge" 404 "nothing found"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 11)))&to=$(utc $((T0 + 20)))"
assert_eq "find: from one second after" "$R2" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 10)))&to=$(utc $((T0 + 19)))"
assert_eq "find: to one second before" "$R1" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 20)))&to=$(utc $((T0 + 20)))"
assert_eq "find: from == to" "$R2" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$(utc $T0)&to=$(utc $((T0 + 30)))"
assert_eq "find: sorted by created_at" "$R0 $R1 $R2 $R3" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$((T0 + 10))&to=$((T0 + 20))"
assert_eq "find: unix seconds" "$R1 $R2" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$(utc $((T0 + 10)))Z&to=$(utc $((T0 + 20)))%2B00:00"
assert_eq "find: RFC 3339" "$R1 $R2" "$(ids)"
http GET "$URL/api/0/profiles?$q&from=$(utc $T0)&to=$(utc $((T0 + 30)))&limit=2"
assert_eq "find: limit keeps the oldest" "$R0 $R1" "$(ids)"
http GET "$URL/api/0/profiles/?$q&from=$(utc $T0)&to=$(utc $((T0 + 30)))&limit=1"
assert_eq "find with a trailing slash and limit=1" "$R0" "$(ids)"

# find errors
http GET "$URL/api/0/profiles?type=cpu&from=$T0&to=$T0";             expect_error "find without service" 400 'bad request: missing "service"'
http GET "$URL/api/0/profiles?service=range&from=$T0&to=$T0";        expect_error "find without type" 400 'bad request: missing "type"'
http GET "$URL/api/0/profiles?service=range&type=cpu&to=$T0";        expect_error "find without from" 400 'bad request: missing "from"'
http GET "$URL/api/0/profiles?service=range&type=cpu&from=$T0";      expect_error "find without to" 400 'bad request: missing "to"'
http GET "$URL/api/0/profiles?service=range&type=cpux&from=$T0&to=$T0"; expect_error "find with unknown type" 400 'bad request: unknown type "cpux"'
http GET "$URL/api/0/profiles?$q&from=garbage&to=$T0";               expect_error_prefix "find with bad from" 400 'bad request: invalid from'
http GET "$URL/api/0/profiles?$q&from=$T0&to=2023-13-45T00:00:00";   expect_error_prefix "find with bad to" 400 'bad request: invalid to'
http GET "$URL/api/0/profiles?$q&from=$T0&to=$T0&labels=a";          expect_error_prefix "find with bad labels" 400 'bad request: invalid labels'
http GET "$URL/api/0/profiles?$q&from=$T0&to=$T0&limit=many";        expect_error_prefix "find with bad limit" 400 'bad request: invalid limit'
http GET "$URL/api/0/profiles?$q&from=$((T0 + 1))&to=$T0";           expect_error_prefix "find with from after to" 400 'bad request:'
http GET "$URL/api/0/profiles?service=nosuch&type=cpu&from=$T0&to=$T0"; expect_error_prefix "find of an unknown service" 404 "nothing found"

# ---- labels: subset match -----------------------------------------------------------
post "$FIXTURES/cpu_003.pb.gz" 'service=lab&type=cpu&labels=env=prod,region=eu'; posted "$FIXTURES/cpu_003.pb.gz"; LA=$(json 'j["body"]["id"]')
post "$FIXTURES/cpu_004.pb.gz" 'service=lab&type=cpu&labels=region=us,env=prod'; posted "$FIXTURES/cpu_004.pb.gz"; LB=$(json 'j["body"]["id"]')
post "$FIXTURES/cpu_005.pb.gz" 'service=lab&type=cpu&labels=env=dev';           posted "$FIXTURES/cpu_005.pb.gz"; LC=$(json 'j["body"]["id"]')
post "$FIXTURES/cpu_006.pb.gz" 'service=lab&type=cpu';                           posted "$FIXTURES/cpu_006.pb.gz"; LD=$(json 'j["body"]["id"]')
range="from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range"
assert_eq "labels: no filter matches all" "$LA $LB $LC $LD" "$(ids)"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range&labels=env=prod"
assert_eq "labels: one pair" "$LA $LB" "$(ids)"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range&labels=region=us,env=prod"
assert_eq "labels: two pairs in any order" "$LB" "$(ids)"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range&labels=env%3Dprod%2Cregion%3Deu"
assert_eq "labels: url-encoded filter" "$LA" "$(ids)"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range&labels=env=prod,region=eu,zone=1"
expect_error_prefix "labels: superset of a profile's labels" 404 "nothing found"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range&labels=env=staging"
expect_error_prefix "labels: no match" 404 "nothing found"

# ---- merge -------------------------------------------------------------------------
curl -s -D "$T/headers" -o "$T/merged.pb.gz" -w '%{http_code}' \
    "$URL/api/0/profiles/merge?service=range&type=cpu&from=$(utc $T0)&to=$(utc $((T0 + 30)))" >"$T/status"
MERGES=$((MERGES + 1))
assert_eq "merge status" 200 "$(cat "$T/status")"
assert_eq "merge content type" "application/octet-stream" "$(header Content-Type)"
assert_contains "merge is an attachment" "$(header Content-Disposition)" 'attachment; filename="'
check "merge answer is gzip" test "$(head -c2 "$T/merged.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b
post "$T/merged.pb.gz" 'service=merged&type=cpu'
assert_eq "merge answer is a valid profile (re-ingest)" 200 "$HTTP_STATUS"
posted "$T/merged.pb.gz"
assert_eq "merged created_at = earliest time_nanos" "$(utc $T0)Z" "$(json 'j["body"]["created_at"]')"
http GET "$URL/api/0/profiles/merge?service=range&type=cpu&from=$(utc $((T0 + 11)))&to=$(utc $((T0 + 19)))"
MERGES=$((MERGES + 1))
expect_error_prefix "merge of nothing" 404 "nothing found"
assert_eq "merge of nothing: says what was asked and what the service holds" \
    "nothing found: no cpu profiles of range from $(utc $((T0 + 11)))Z to $(utc $((T0 + 19)))Z; range holds 4 cpu profiles from $(utc $T0)Z to $(utc $((T0 + 30)))Z (a profile's time is the one inside it)" \
    "$(json 'j["error"]')"
http GET "$URL/api/0/profiles/merge?service=range&type=cpu&from=$T0"
expect_error "merge without to" 400 'bad request: missing "to"'
http GET "$URL/api/0/profiles/merge?type=cpu&from=$T0&to=$T0"
expect_error "merge without service" 400 'bad request: missing "service"'
http GET "$URL/api/0/profiles/merge?service=range&type=nope&from=$T0&to=$T0"
expect_error "merge with unknown type" 400 'bad request: unknown type "nope"'

# ---- merge by ids ------------------------------------------------------------------
post "$FIXTURES/heap_000.pb.gz" 'service=api&type=heap'; posted "$FIXTURES/heap_000.pb.gz"
ID_HEAP=$(json 'j["body"]["id"]')
curl -s -D "$T/headers" -o "$T/ids.pb.gz" -w '%{http_code}' "$URL/api/0/profiles/$ID_CPU0+$ID_CPU1" >"$T/status"
MERGES=$((MERGES + 1))
assert_eq "id merge status" 200 "$(cat "$T/status")"
assert_eq "id merge content type" "application/octet-stream" "$(header Content-Type)"
assert_contains "id merge is an attachment" "$(header Content-Disposition)" 'attachment; filename="'
curl -s -o "$T/ids2.pb.gz" "$URL/api/0/profiles/$ID_CPU0%20$ID_CPU1"
MERGES=$((MERGES + 1))
check "id merge: '+' sent as an encoded space" cmp -s "$T/ids.pb.gz" "$T/ids2.pb.gz"
curl -s -o "$T/ids3.pb.gz" "$URL/api/0/profiles/$ID_CPU0%2B$ID_CPU1"
MERGES=$((MERGES + 1))
check "id merge: '+' sent as %2B" cmp -s "$T/ids.pb.gz" "$T/ids3.pb.gz"
check "id merge differs from either input" test "$(cmp -s "$T/ids.pb.gz" "$CPU0"; echo $?)" != 0
http GET "$URL/api/0/profiles/$ID_CPU0+$ID_HEAP"
MERGES=$((MERGES + 1))
assert_eq "id merge of cpu and heap" 400 "$HTTP_STATUS"
assert_eq "id merge of cpu and heap: code" 400 "$(json 'j["code"]')"
http GET "$URL/api/0/profiles/$ID_CPU0+00000000000000000000"
MERGES=$((MERGES + 1))
assert_eq "id merge with an unknown id" 404 "$HTTP_STATUS"
http GET "$URL/api/0/profiles/$ID_CPU0+bogus"
expect_error "id merge with a malformed id" 400 'bad profile id "bogus"'

# ---- delete --------------------------------------------------------------------------
http DELETE "$URL/api/0/profiles/$LD"
assert_eq "delete status" 200 "$HTTP_STATUS"
assert_eq "delete code" 200 "$(json 'j["code"]')"
DELETED=$((DELETED + 1))
http GET "$URL/api/0/profiles/$LD"
expect_error_prefix "get after delete" 404 "nothing found"
http DELETE "$URL/api/0/profiles/$LD"
expect_error_prefix "delete twice" 404 "nothing found"
http GET "$URL/api/0/profiles?service=lab&type=cpu&$range"
assert_eq "find after delete" "$LA $LB $LC" "$(ids)"
http DELETE "$URL/api/0/profiles/zzz"
expect_error "delete of a malformed id" 400 'bad profile id "zzz"'

# ---- services ---------------------------------------------------------------------
http GET "$URL/api/0/services"
assert_eq "services status" 200 "$HTTP_STATUS"
assert_eq "services sorted" "api café chunked lab merged notime notime2 range" "$(json '" ".join(j["body"])')"

# ---- 404 / 405 ----------------------------------------------------------------------
http GET "$URL/api/0/nothing" -D "$T/headers"
assert_eq "unknown path status" 404 "$HTTP_STATUS"
assert_eq "unknown path is JSON" "application/json" "$(header Content-Type)"
assert_eq "unknown path code" 404 "$(json 'j["code"]')"
http GET "$URL/"   # the web page (web_page.sh tests it)
assert_eq "root path is the web page" 200 "$HTTP_STATUS"
http GET "$URL/ui"
assert_eq "/ui alone" 404 "$HTTP_STATUS"
http PUT "$URL/api/0/profiles" -D "$T/headers"
assert_eq "PUT profiles status" 405 "$HTTP_STATUS"
assert_eq "PUT profiles code" 405 "$(json 'j["code"]')"
assert_contains "405 has Allow" "$(header Allow)" "POST"
http POST "$URL/api/0/services"
assert_eq "POST services" 405 "$HTTP_STATUS"
http DELETE "$URL/api/0/profiles/merge"
assert_eq "DELETE merge" 405 "$HTTP_STATUS"
http POST "$URL/api/0/profiles/$ID_CPU0"
assert_eq "POST to an id" 405 "$HTTP_STATUS"
assert_eq "HEAD of a profile" 200 "$(curl -s -o /dev/null -I -w '%{http_code}' "$URL/api/0/profiles/$ID_CPU0")"

# ---- 413: body over the 32 MiB default --------------------------------------------
head -c $((33 << 20)) /dev/urandom >"$T/big"
http POST "$URL/api/0/profiles?service=big&type=cpu" --data-binary @"$T/big"
expect_error_prefix "33 MiB body (Content-Length)" 413 "request body too large"
http POST "$URL/api/0/profiles?service=big&type=cpu" -H 'Expect:' --data-binary @"$T/big"
assert_eq "33 MiB body without Expect: 100-continue" 413 "$HTTP_STATUS"
HTTP_STATUS=$(head -c $((33 << 20)) /dev/urandom |
    curl -s -o "$T/body" -w '%{http_code}' -X POST -T - --max-time 60 "$URL/api/0/profiles?service=big&type=cpu")
expect_error_prefix "33 MiB body (chunked)" 413 "request body too large"
rm -f "$T/big"
http GET "$URL/api/0/version"
assert_eq "still serving after 413s" 200 "$HTTP_STATUS"
http GET "$URL/api/0/services"
assert_eq "nothing stored by the 413s" "api café chunked lab merged notime notime2 range" "$(json '" ".join(j["body"])')"

# ---- decompression limit (the store's: 256 MiB) -> 400 -----------------------------
head -c $((300 << 20)) /dev/zero | gzip -1 >"$T/bomb.gz"
post "$T/bomb.gz" 'service=bomb&type=cpu'
expect_error_prefix "gzip inflating over 256 MiB" 400 'malformed profile ('
http GET "$URL/api/0/version"
assert_eq "still serving after the zip bomb" 200 "$HTTP_STATUS"

# ---- listening: port in use, IPv6 ------------------------------------------------------
timeout 20 "$PROFEFS" serve --data "$T/data_busy" --addr "127.0.0.1:$PORT" 2>"$T/busy.log"
assert_eq "second server on a busy port fails" 1 "$?"
assert_contains "busy port reason" "$(cat "$T/busy.log")" "Address already in use"
P6=$(free_port)
"$PROFEFS" serve --data "$T/data6" --addr "[::1]:$P6" 2>"$T/v6.log" &
V6_PID=$!
T_PIDS+=("$V6_PID")
T_LOGS+=("$T/v6.log")
if wait_http "http://[::1]:$P6/api/0/version" 30; then
    http GET "http://[::1]:$P6/api/0/version" -g
    assert_eq "IPv6 server answers on [::1]" 200 "$HTTP_STATUS"
    assert_eq "IPv6 server: not on 127.0.0.1" 000 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$P6/api/0/version")"
else
    fail "server on [::1]:$P6 did not start: $(cat "$T/v6.log")"
fi
kill -TERM "$V6_PID"; wait "$V6_PID"
assert_eq "IPv6 server exit status" 0 "$?"

# ---- /debug/metrics -------------------------------------------------------------------
curl -s -D "$T/headers" -o "$T/metrics" "$URL/debug/metrics"
assert_contains "metrics content type" "$(header Content-Type)" "text/plain"
metric() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
post_ok=$(metric 'http_requests_total{method="POST",code="200"}')
assert_eq "metrics: POST 200 count" "$POSTED" "$post_ok"
check "metrics: POST 400 counted" test "$(metric 'http_requests_total{method="POST",code="400"}')" -ge 10
check "metrics: POST 413 counted" test "$(metric 'http_requests_total{method="POST",code="413"}')" -ge 3
check "metrics: GET 200 counted" test "$(metric 'http_requests_total{method="GET",code="200"}')" -ge 20
assert_eq "metrics: ingested profiles" "$POSTED" "$(metric profefs_ingest_profiles_total)"
assert_eq "metrics: ingested bytes" "$POSTED_BYTES" "$(metric profefs_ingest_bytes_total)"
assert_eq "metrics: merges timed" "$MERGES" "$(metric profefs_merge_seconds_count)"
assert_eq "metrics: merge histogram +Inf bucket" "$MERGES" "$(metric 'profefs_merge_seconds_bucket{le="+Inf"}')"
# one POST (notime.pb.gz, created_at as unix seconds) repeats an earlier
# profile: ingest is idempotent, it is stored once
assert_eq "metrics: stored profiles" "$((POSTED - DELETED - 1))" "$(metric profefs_store_profiles)"
check "metrics: stored bytes" test "$(metric profefs_store_bytes)" -gt 0
check "metrics: disk bytes" test "$(metric profefs_store_disk_bytes)" -gt 0

# ---- the log line ---------------------------------------------------------------------
check "log: one line per request" grep -qE "^http POST /api/0/profiles 200 [0-9]+ [0-9.]+$" "$SERVER_LOG"
check "log: 404 line" grep -qE "^http GET /api/0/nothing 404 [0-9]+ [0-9.]+$" "$SERVER_LOG"
check "log: 413 line" grep -qE "^http POST /api/0/profiles 413 [0-9]+ [0-9.]+$" "$SERVER_LOG"
# bytes that could break a log line are written as %XX, within one line
# (sent by hand: curl would escape the bytes itself)
hp=${URL#http://}
exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"
printf 'GET /api/0/caf\303\251 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
cat <&3 >/dev/null
exec 3<&-
check "log: non-ASCII path escaped" grep -qE "^http GET /api/0/caf%C3%A9 404 [0-9]+ [0-9.]+$" "$SERVER_LOG"
check "log: every line well formed" bash -c "! grep -vE '^(http [A-Z]+ [^ ]+ [0-9]+ [0-9]+ [0-9]+\.[0-9]{3}|[a-z]+:.*|profefs: .*)$' '$SERVER_LOG'"

stop_server TERM

# ---- a read-only store: writes are 403 -----------------------------------------------
DATA="$T/data" start_server --read-only || t_done
post "$CPU0" 'service=ro&type=cpu'
assert_eq "ingest into a read-only store" 403 "$HTTP_STATUS"
assert_eq "ingest into a read-only store: code" 403 "$(json 'j["code"]')"
http DELETE "$URL/api/0/profiles/$ID_CPU0"
assert_eq "delete in a read-only store" 403 "$HTTP_STATUS"
curl -s -o "$T/raw" "$URL/api/0/profiles/$ID_CPU0"
check "reads still work read-only" cmp -s "$CPU0" "$T/raw"
stop_server TERM
t_done
