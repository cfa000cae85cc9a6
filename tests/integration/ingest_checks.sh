#!/usr/bin/env bash
# tests/integration/ingest_checks.sh — what an ingest must be, over HTTP and
# through the mount alike (issue 12): idempotent (the same bytes, service,
# type, labels and created_at are stored once and a repeat answers with the
# first id; any difference is another profile), and of the declared kind
# (sample types checked: 400 / EINVAL naming the expected and the found
# ones; `other` takes any pprof); a merge that meets mismatched profiles
# names the offending id.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" || t_done
count() {
    http GET "$URL/api/0/profiles?service=$1&type=$2&from=0&to=9999999999${3:+&labels=$3}"
    if [ "$HTTP_STATUS" = 200 ]; then json 'len(j["body"])'; else echo 0; fi
}

# ---- idempotent ingest over HTTP -------------------------------------------------------------
id1=$(ingest "$FIXTURES/cpu_005.pb.gz" api cpu region=eu)
id2=$(ingest "$FIXTURES/cpu_005.pb.gz" api cpu region=eu)
check "first ingest" [ ${#id1} = 20 ]
assert_eq "a repeat answers with the first id" "$id1" "$id2"
assert_eq "stored once" 1 "$(count api cpu)"
id3=$(ingest "$FIXTURES/cpu_005.pb.gz" api cpu 'region=eu,host=a')
check "other labels: another profile" [ ${#id3} = 20 -a "$id3" != "$id1" ]
id4=$(ingest "$FIXTURES/cpu_005.pb.gz" web cpu region=eu)
check "another service: another profile" [ ${#id4} = 20 -a "$id4" != "$id1" ]
id5=$(ingest "$FIXTURES/cpu_005.pb.gz" api other region=eu)
check "another type: another profile" [ ${#id5} = 20 -a "$id5" != "$id1" ]
retime "$FIXTURES/cpu_005.pb.gz" "$T/later.pb.gz" 1700000000
id6=$(ingest "$T/later.pb.gz" api cpu region=eu)
check "another created_at: another profile" [ ${#id6} = 20 -a "$id6" != "$id1" ]
# a trace has no time of its own: created_at comes from the request
head -c 4000 /dev/urandom > "$T/trace.bin"
t1=$(ingest "$T/trace.bin" api trace '' 1700000100)
t2=$(ingest "$T/trace.bin" api trace '' 1700000100)
t3=$(ingest "$T/trace.bin" api trace '' 1700000200)
assert_eq "a trace sent twice with one created_at: one id" "$t1" "$t2"
check "the same trace at another time: another profile" [ "$t3" != "$t1" ]
# many retries at once (an agent after timeouts): still one profile
pids=()
for i in 1 2 3 4 5 6; do ingest "$FIXTURES/heap_005.pb.gz" api heap >"$T/r$i" & pids+=($!); done
wait "${pids[@]}"
assert_eq "6 concurrent identical ingests: one id" 1 "$(cat "$T"/r[1-6] | sort -u | wc -l)"
assert_eq "6 concurrent identical ingests: stored once" 1 "$(count api heap)"

# ---- idempotent through the mount -----------------------------------------------------------------
before=$(count api cpu region=eu)
check "cp of the same profile into the mount" cp "$FIXTURES/cpu_005.pb.gz" "$MNT/api/cpu/region=eu/again.pb.gz"
assert_eq "the mount's repeat is the same profile" "$before" "$(count api cpu region=eu)"
assert_eq "listed once (with the one of another time)" 2 "$(ls "$MNT/api/cpu/region=eu" | wc -l)"
check "it keeps the first id" test -e "$MNT/api/cpu/region=eu/$(ls "$MNT/api/cpu/region=eu" | grep "_$id1.pb.gz")"

# ---- sample types checked against the declared type ------------------------------------------------
http POST "$URL/api/0/profiles?service=api&type=heap" --data-binary @"$FIXTURES/cpu_006.pb.gz"
assert_eq "a CPU profile as heap: 400" 400 "$HTTP_STATUS"
assert_contains "names the expected sample types" "$HTTP_BODY" "expected alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes"
assert_contains "names the found sample types" "$HTTP_BODY" "found samples/count,cpu/nanoseconds"
http POST "$URL/api/0/profiles?service=api&type=goroutine" --data-binary @"$FIXTURES/mutex_005.pb.gz"
assert_eq "a mutex profile as goroutine: 400" 400 "$HTTP_STATUS"
for t in cpu:cpu heap:heap block:block mutex:mutex goroutine:goroutine threadcreate:threadcreate block:mutex mutex:block; do
    http POST "$URL/api/0/profiles?service=kinds&type=${t#*:}" --data-binary @"$FIXTURES/${t%%:*}_010.pb.gz"
    assert_eq "a ${t%%:*} profile as ${t#*:}: accepted" 200 "$HTTP_STATUS"
done
for f in cpu_007 heap_010 goroutine_010; do
    http POST "$URL/api/0/profiles?service=any&type=other" --data-binary @"$FIXTURES/$f.pb.gz"
    assert_eq "other takes $f" 200 "$HTTP_STATUS"
done
mkdir -p "$MNT/api/heap"
out=$(cp "$FIXTURES/cpu_006.pb.gz" "$MNT/api/heap/x.pb.gz" 2>&1); rc=$?
check "cp of a CPU profile into heap/ fails" [ "$rc" != 0 ]
assert_contains "with EINVAL" "$out" "Invalid argument"
check "the reason is logged" grep -q "ingest of /api/heap/x.pb.gz failed: sample types do not match type heap" "$SERVER_LOG"
assert_eq "heap has only its own profile" 1 "$(count api heap)"
curl -s -o "$T/hm" -w '%{http_code}' "$URL/api/0/profiles/merge?service=api&type=heap&from=0&to=now" >"$T/code"
assert_eq "heap merges still work" 200 "$(cat "$T/code")"

# ---- a merge that meets mismatched profiles names the offender -----------------------------------
http GET "$URL/api/0/profiles?service=any&type=other&from=0&to=9999999999"
ids=$(json '" ".join(m["id"] for m in j["body"])')
http GET "$URL/api/0/profiles/merge?service=any&type=other&from=0&to=now"
assert_eq "merging profiles of different kinds: 400" 400 "$HTTP_STATUS"
named=0
for id in $ids; do case "$HTTP_BODY" in *"$id"*) named=1 ;; esac; done
assert_eq "the error names an offending profile id ($HTTP_BODY)" 1 "$named"
out=$(cat "$MNT/merge/any/other/0..now" 2>&1)
assert_contains "the mount's merge fails with EINVAL" "$out" "Invalid argument"

stop_server
t_done
