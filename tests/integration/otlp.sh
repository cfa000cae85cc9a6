#!/usr/bin/env bash
# tests/integration/otlp.sh — OTLP profiles over HTTP (issue 20, item 3):
# requests built from the published .proto (tests/tools/otlp_gen.py)
# are stored one pprof per profile, filed by service.name, attributes and
# sample type; their merge equals the call tree they were built from, as
# folded stacks and in `go tool pprof -top`; bad bodies get OTLP's error
# shape (google.rpc.Status) and store nothing; a request with some bad
# profiles stores the others and says how many it refused.
. "$TESTS_DIR/lib.sh"
t_init
PY=/usr/bin/python3
GEN="$TESTS_DIR/tools/otlp_gen.py"

start_server || t_done
OTLP="$URL/v1development/profiles"
$PY "$GEN" request good "$T/good.bin"
$PY "$GEN" request dangling "$T/dangling.bin"

# post FILE [CURL ARGS...]: status in HTTP_STATUS, body in $T/answer
post() {
    local f=$1; shift
    HTTP_STATUS=$(curl -s -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/x-protobuf' \
        "$@" --data-binary @"$f" "$OTLP")
}
count() {
    http GET "$URL/api/0/profiles?service=$1&type=$2&from=now-1h&to=now${3:+&labels=$3}"
    if [ "$HTTP_STATUS" = 200 ]; then json 'len(j["body"])'; else echo 0; fi
}

# ---- a good request: 4 profiles of 3 resources ---------------------------------------
post "$T/good.bin"
assert_eq "export: 200" 200 "$HTTP_STATUS"
assert_eq "no partial success" "0 " "$($PY "$GEN" response "$T/answer")"
assert_eq "two cpu profiles of otlp-app" 2 "$(count otlp-app cpu)"
assert_eq "alloc_space is heap" 1 "$(count otlp-app heap)"
assert_eq "no service.name: unknown_service; sample type wall: type wall" 1 \
    "$(count unknown_service wall host.name=h2)"
assert_eq "off_cpu maps to none: other, with its name as a label" 1 \
    "$(count otlp-app other sample_type=off_cpu)"
assert_eq "the same request again (gzip): stored once" 200 \
    "$(gzip -c "$T/good.bin" > "$T/good.gz"; post "$T/good.gz" -H 'Content-Encoding: gzip'; echo "$HTTP_STATUS")"
assert_eq "still two cpu profiles" 2 "$(count otlp-app cpu)"

http GET "$URL/api/0/profiles?service=otlp-app&type=cpu&from=now-1h&to=now"
labels=$(json '",".join(sorted(l["key"]+"="+l["value"] for l in j["body"][0]["labels"]))')
assert_eq "labels: resource and profile attributes, no pid" \
    "host.name=h1,k8s.pod.name=app-7f9c,profile.kind=ebpf" "$labels"

# ---- the merge is the call tree ----------------------------------------------------------
assert_eq "merge: 200" 200 "$(curl -s -o "$T/merged.pb.gz" -w '%{http_code}' \
    "$URL/api/0/profiles/merge?service=otlp-app&type=cpu&from=now-1h&to=now")"
assert_eq "folded stacks of the merge equal the trees sent (inlined frames, timestamps)" \
    "$($PY "$GEN" expect good)" "$($PY "$GEN" folded "$T/merged.pb.gz")"
top=$(go tool pprof -top "$T/merged.pb.gz" 2>/dev/null)
assert_contains "go tool pprof: hot's flat is 55" "$(echo "$top" | awk '$6 == "hot"')" "55"
assert_contains "go tool pprof: the inlined frame" "$top" "inlined (inline)"
check "go tool pprof does not look for the binary (frames are symbolized)" \
    bash -c "! go tool pprof -top '$T/merged.pb.gz' 2>&1 | grep -q 'symbolization failed'"
traces=$(go tool pprof -traces "$T/merged.pb.gz" 2>/dev/null)
assert_contains "sample attributes are pprof labels" "$traces" "thread.name:  worker"
# a single stored profile opens as it is
http GET "$URL/api/0/profiles?service=otlp-app&type=heap&from=now-1h&to=now"
curl -s -o "$T/heap.pb.gz" "$URL/api/0/profiles/$(json 'j["body"][0]["id"]')"
assert_contains "the heap profile opens in go tool pprof" \
    "$(go tool pprof -top -sample_index=alloc_space "$T/heap.pb.gz" 2>/dev/null)" "alloc"

# ---- real Go profiles through OTLP: the merge is go tool pprof's ----------------------------
for i in 003 004 005; do
    $PY "$GEN" from-pprof "$FIXTURES/cpu_$i.pb.gz" "$T/go$i.bin" gosvc
    post "$T/go$i.bin"
    assert_eq "Go cpu_$i as OTLP: 200" 200 "$HTTP_STATUS"
done
curl -s -o "$T/gomerged.pb.gz" "$URL/api/0/profiles/merge?service=gosvc&type=cpu&from=0&to=now"
go tool pprof -proto -sample_index=cpu "$FIXTURES"/cpu_00[345].pb.gz > "$T/goref.pb.gz" 2>/dev/null
assert_eq "merge of 3 Go profiles sent as OTLP: go tool pprof -top equals the originals'" \
    "$(go tool pprof -top -sample_index=cpu "$T/goref.pb.gz" 2>&1 | sed -n '/flat%/,$p')" \
    "$(go tool pprof -top "$T/gomerged.pb.gz" 2>&1 | sed -n '/flat%/,$p')"
assert_eq "and their folded stacks" "$($PY "$GEN" folded "$T/goref.pb.gz")" \
    "$($PY "$GEN" folded "$T/gomerged.pb.gz")"

# ---- some profiles bad: the others stored, the count and first reason answered -----------
post "$T/dangling.bin"
assert_eq "partly bad: 200" 200 "$HTTP_STATUS"
ans=$($PY "$GEN" response "$T/answer")
assert_contains "4 of 5 rejected" "$ans" "4 profile 1: stack index 999 outside its table"
assert_eq "the good one is stored" 1 "$(count otlp-bad cpu)"
assert_contains "the refusal is logged" "$(cat "$SERVER_LOG")" "otlp: 4 of 5 profiles refused"

# ---- bad bodies: OTLP's error shape, nothing stored ----------------------------------------
before=$(curl -s "$URL/api/0/services")
head -c 512 /dev/urandom > "$T/junk"
post "$T/junk"
assert_eq "junk: 400" 400 "$HTTP_STATUS"
assert_contains "junk: a Status saying why" "$($PY "$GEN" status "$T/answer")" \
    "3 malformed request: not an ExportProfilesServiceRequest"
post "$T/junk" -H 'Content-Encoding: gzip'
assert_eq "corrupt gzip: 400" 400 "$HTTP_STATUS"
assert_contains "corrupt gzip: says so" "$($PY "$GEN" status "$T/answer")" "malformed gzip body"
post "$T/good.bin" -H 'Content-Encoding: br'
assert_eq "unknown content encoding: 415" 415 "$HTTP_STATUS"
HTTP_STATUS=$(curl -s -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{"resourceProfiles":[]}' "$OTLP")
assert_eq "JSON: 415" 415 "$HTTP_STATUS"
assert_contains "JSON: says what to send" "$($PY "$GEN" status "$T/answer")" \
    "send application/x-protobuf"
http GET "$OTLP"
assert_eq "GET: 405" 405 "$HTTP_STATUS"
# a zip bomb inflates no further than --max-inflate
head -c 300000000 /dev/zero | gzip -c > "$T/bomb.gz"
post "$T/bomb.gz" -H 'Content-Encoding: gzip'
assert_eq "gzip bomb: 413" 413 "$HTTP_STATUS"
assert_eq "bad bodies stored nothing" "$before" "$(curl -s "$URL/api/0/services")"
check "server still up" curl -sf -o /dev/null "$URL/api/0/version"
t_done
