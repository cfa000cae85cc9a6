#!/usr/bin/env bash
# s3_hardening.sh — what the second review of the S3 store found, on a real
# S3 server (Ceph radosgw, tests/tools/rgw.sh), under a store prefix (t1/):
#   - foreign keys another program put in the bucket (a control character
#     in the labels, in a service name): find, merge, services and labels
#     still answer, each key is logged once and skipped, and retention
#     goes on past them to the services after;
#   - connections are pooled per node: a series of merges leaves (almost)
#     no socket to radosgw in TIME_WAIT (each merge closed its 16);
#   - content keys: the digest is SHA-256 (its value checked against
#     Python's hashlib), the PUT is conditional (If-None-Match: *): other
#     bytes under an existing key are refused and never overwrite it, the
#     same bytes again answer with the same id; keys written with the old
#     FNV-1a digest are listed, read, merged and deleted; a UTF-8 service
#     name goes RFC 2047-encoded into x-amz-meta-service;
#   - errors and retries, through a fault-injecting proxy in front of
#     radosgw (tests/tools/s3_fault.py): throttling (429 SlowDown) that
#     outlasts the retries is a 503 with Retry-After; a stored object over
#     --max-inflate is a 500, not a 400; the back-off of retried GETs does
#     not stall the other GETs of a merge; a bucket name with '.' or '_'
#     on AWS (virtual-hosted HTTPS) is refused at start with the way out;
#     a DELETE S3 refuses does not end a retention pass.
. "$TESTS_DIR/lib.sh"
t_init
s3_start
DATA="s3://$B/t1"
ids_of() { json "' '.join(p['id'] for p in j['body'])"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

start_server || t_done
A=$URL; ALOG=$SERVER_LOG

# ---- foreign keys ---------------------------------------------------------------------------
T0=1795556966
IDS=()
for k in 0 1 2; do IDS+=("$(ingest "$FIXTURES/cpu_00$k.pb.gz" roll cpu "l=v$k")"); done
check "3 ingested" test -n "${IDS[2]}"
XID=${IDS[0]#P0.roll/1/}; XID=${XID%%,*}
# between the profiles, with a control character: what `curl --aws-sigv4` can put
code=$(s3curl PUT "/t1/P0.roll/1/$XID,l=a"$'\x01'"b" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "foreign key with \\x01 put" 200 "$code"
code=$(s3curl PUT "/t1/P0.b"$'\x02'"d/1/$XID" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "foreign service with \\x02 put" 200 "$code"
Q="service=roll&type=cpu&from=$(utc $((T0 - 10)))&to=$(utc $((T0 + 10)))"
http GET "$A/api/0/profiles?$Q"
assert_eq "find with a foreign key: 200" 200 "$HTTP_STATUS"
assert_eq "find lists the 3 profiles, not the foreign key" "${IDS[*]}" "$(ids_of)"
go tool pprof -proto "$FIXTURES"/cpu_00[0-2].pb.gz >"$T/want.pb.gz" 2>>"$T/pprof.err"
http GET "$A/api/0/profiles/merge?$Q"
assert_eq "merge with a foreign key: 200" 200 "$HTTP_STATUS"
curl -s -o "$T/m.pb.gz" "$A/api/0/profiles/merge?$Q"
same_profile "merge of the 3 profiles only" "$T/want.pb.gz" "$T/m.pb.gz"
http GET "$A/api/0/services"
assert_eq "services with a foreign service: 200" 200 "$HTTP_STATUS"
assert_eq "services: roll only" "['roll']" "$(json 'j["body"]')"
http GET "$A/api/0/labels?service=roll&type=cpu"
n=$(grep -c "skipping key" "$ALOG")
assert_eq "the two foreign keys logged once each (after 4 listings)" 2 "$n"
assert_contains "the log names the key, encoded" "$(cat "$ALOG")" "t1/P0.roll/1/$XID%2Cl%3Da%01b"

# retention goes on past a service holding a foreign key (aaa sorts first)
retime "$FIXTURES/cpu_010.pb.gz" "$T/old0.pb.gz" 1600000000
retime "$FIXTURES/cpu_011.pb.gz" "$T/old1.pb.gz" 1600000600
ingest "$T/old0.pb.gz" aaa cpu >/dev/null
OLDZ=$(ingest "$T/old1.pb.gz" zzz cpu)
retime "$FIXTURES/heap_005.pb.gz" "$T/oldh.pb.gz" 1600000100
OXID=$(ingest "$T/oldh.pb.gz" aaa heap); OXID=${OXID#P0.aaa/2/}
code=$(s3curl PUT "/t1/P0.aaa/2/$OXID,k=x"$'\x03' -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "old foreign key put" 200 "$code"
start_server --retention 30d || t_done
RLOG=$SERVER_LOG
for ((i = 0; i < 100; i++)); do
    [ "$(status_of "$A/api/0/profiles/$(esc "$OLDZ")")" = 404 ] && break
    sleep 0.2
done
assert_eq "retention pruned zzz, after aaa and its foreign key" 404 "$(status_of "$A/api/0/profiles/$(esc "$OLDZ")")"
stop_server; URL=$A
assert_eq "no retention error" "" "$(grep "retention:" "$RLOG" | grep -v "retention: deleted")"
assert_eq "the foreign old key is left alone" 200 "$(s3curl GET "/t1/P0.aaa/2/$OXID,k=x"$'\x03' -o /dev/null -w '%{http_code}')"

# ---- one pool of connections per node --------------------------------------------------------
RGW_PORT=${EP##*:}
tw() { ss -tanH state time-wait "( dport = :$RGW_PORT )" | wc -l; }
# the last 15 seconds: a slot not over, no rollup, 15 GETs per merge
NOW=$(date +%s)
for k in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do
    f=$(printf "%s/cpu_%03d.pb.gz" "$FIXTURES" $((k % 10)))
    retime "$f" "$T/pool$k.pb.gz" $((NOW - k))
    ingest "$T/pool$k.pb.gz" pool cpu "k=$k" >/dev/null
done
QP="service=pool&type=cpu&from=$(utc $((NOW - 20)))&to=$(utc $((NOW + 1)))"
http GET "$A/api/0/profiles?$QP"
assert_eq "15 profiles to merge" 15 "$(json 'len(j["body"])')"
tw0=$(tw)
for i in 1 2 3 4 5; do
    assert_eq "merge $i" 200 "$(curl -s -o "$T/merge$i.pb.gz" -w "%{http_code}" "$A/api/0/profiles/merge?$QP")"
done
tw1=$(tw)
check "5 merges of 15 profiles: sockets to radosgw in TIME_WAIT $tw0 -> $tw1 (was +75)" test $((tw1 - tw0)) -le 5
check "the 5 merges gave the same bytes" cmp -s "$T/merge1.pb.gz" "$T/merge5.pb.gz"

# ---- content keys: SHA-256, conditional PUT, old ids -------------------------------------------
TS=$((NOW - 100))
retime "$FIXTURES/cpu_003.pb.gz" "$T/sha.pb.gz" $TS
digest() { # digest SERVICE TYPENUM LABELS TIME FILE sha|fnv: the 20-character xid
    python3 - "$@" <<'PY'
import base64, hashlib, sys
svc, t, labels, when, path, how = sys.argv[1:]
msg = svc.encode() + b"\0" + bytes([int(t)]) + labels.encode() + b"\0" + int(when).to_bytes(8, "big") + open(path, "rb").read()
if how == "sha":
    tail = hashlib.sha256(msg).digest()[:8]
else:
    h = 0xcbf29ce484222325
    for b in msg: h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
    tail = h.to_bytes(8, "big")
print(base64.b32hexencode(int(when).to_bytes(4, "big") + tail).decode().lower()[:20])
PY
}
SHA_ID=$(ingest "$T/sha.pb.gz" sha cpu "k=v")
assert_eq "the id's digest is SHA-256 of (service, type, labels, created_at, bytes)" \
    "P0.sha/1/$(digest sha 0 k=v $TS "$T/sha.pb.gz" sha),k=v" "$SHA_ID"
assert_eq "the same bytes again: the same id" "$SHA_ID" "$(ingest "$T/sha.pb.gz" sha cpu "k=v")"
s3curl GET "/t1/$SHA_ID" -o "$T/got.pb.gz"
check "the object holds the profile" cmp -s "$T/sha.pb.gz" "$T/got.pb.gz"
# other bytes under that key (what a crafted collision would be): refused, kept
code=$(s3curl PUT "/t1/$SHA_ID" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "a foreign writer puts other bytes under the key" 200 "$code"
http POST "$A/api/0/profiles?service=sha&type=cpu&labels=k=v" --data-binary @"$T/sha.pb.gz"
assert_eq "ingest onto a key holding other bytes: refused" 400 "$HTTP_STATUS"
assert_contains "refused: the reason" "$HTTP_BODY" "another profile is already stored under key t1/$SHA_ID: not overwritten"
s3curl GET "/t1/$SHA_ID" -o "$T/got2.pb.gz"
check "the stored object was not overwritten" cmp -s "$FIXTURES/cpu_009.pb.gz" "$T/got2.pb.gz"
# a key written with the old FNV-1a digest: listed, read, merged, deleted
retime "$FIXTURES/cpu_004.pb.gz" "$T/fnv.pb.gz" $((TS + 1))
FNV_ID="P0.sha/1/$(digest sha 0 k=v $((TS + 1)) "$T/fnv.pb.gz" fnv),k=v"
code=$(s3curl PUT "/t1/$FNV_ID" -o /dev/null -w '%{http_code}' --data-binary @"$T/fnv.pb.gz")
assert_eq "an object under an old FNV-1a key" 200 "$code"
QS="service=sha&type=cpu&from=$(utc $((TS + 1)))&to=$(utc $((TS + 1)))"
http GET "$A/api/0/profiles?$QS"
assert_eq "old key listed" "$FNV_ID" "$(ids_of)"
curl -s -o "$T/fnvget.pb.gz" "$A/api/0/profiles/$(esc "$FNV_ID")"
check "old key read" cmp -s "$T/fnv.pb.gz" "$T/fnvget.pb.gz"
assert_eq "old key merged" 200 "$(status_of "$A/api/0/profiles/merge?$QS")"
assert_eq "old key deleted" 200 "$(status_of -X DELETE "$A/api/0/profiles/$(esc "$FNV_ID")")"
assert_eq "old key gone" 404 "$(status_of "$A/api/0/profiles/$(esc "$FNV_ID")")"
# UTF-8 in the service: RFC 2047 in the header, the key as is
U_ID=$(ingest "$T/sha.pb.gz" "caf%C3%A9" cpu)
assert_eq "UTF-8 service ingested" "P0.café" "${U_ID%%/1/*}"
s3curl GET "/t1/$U_ID" -D "$T/uhdr" -o /dev/null
assert_contains "x-amz-meta-service RFC 2047-encoded" "$(tr -d '\r' <"$T/uhdr" | grep -i '^x-amz-meta-service:')" "=?UTF-8?B?Y2Fmw6k=?="

# ---- errors and retries -------------------------------------------------------------------------
RULES="$T/fault.rules"
python3 "$TESTS_DIR/tools/s3_fault.py" "$EP" "$RULES" "$T/fault.port" 2>"$T/fault.log" &
T_PIDS+=("$!")
for ((i = 0; i < 100; i++)); do [ -s "$T/fault.port" ] && break; sleep 0.1; done
PX="http://127.0.0.1:$(cat "$T/fault.port")"
start_server --s3-endpoint "$PX" --max-inflate 1M || t_done
F=$URL
URL=$A
SLOW_ID=$(ingest "$T/sha.pb.gz" slow cpu)
echo "GET /P0.slow/ 429 SlowDown *" >"$RULES"
curl -s -D "$T/slow.hdr" -o "$T/slow.body" "$F/api/0/profiles/$(esc "$SLOW_ID")"
hdr=$(tr -d '\r' <"$T/slow.hdr")
assert_contains "throttled past the retries: 503" "$(head -1 <<<"$hdr")" " 503"
assert_contains "throttled: Retry-After" "$hdr" "Retry-After: 1"
: >"$RULES"
assert_eq "throttling over: 200" 200 "$(status_of "$F/api/0/profiles/$(esc "$SLOW_ID")")"

# a stored object over the node's --max-inflate (1M): the server's limit, 500
head -c 1200000 /dev/urandom >"$T/big.bin"
BIG_ID="P0.big/1/$(digest big 0 "" $TS "$T/big.bin" sha)"
code=$(s3curl PUT "/t1/$BIG_ID" -o /dev/null -w '%{http_code}' --data-binary @"$T/big.bin")
assert_eq "a 1.2 MB object" 200 "$code"
assert_eq "GET of a stored object over --max-inflate: 500" 500 "$(status_of "$F/api/0/profiles/$(esc "$BIG_ID")")"
assert_eq "merge of it: 500" 500 "$(status_of "$F/api/0/profiles/$(esc "$BIG_ID")+$(esc "$SLOW_ID")")"

# every GET of a merge fails twice (500), then succeeds: the back-offs
# (50 + 200 ms each) overlap instead of adding up (15 x 250 ms before)
http GET "$A/api/0/profiles?$QP"
POOL_IDS=$(json "'+'.join(__import__('urllib.parse').parse.quote(p['id'], safe='') for p in j['body'])")
ms() { echo $(( $(date +%s%N) / 1000000 )); }
curl -s -o /dev/null "$F/api/0/profiles/$POOL_IDS"   # warm: connections, proxy
t=$(ms); code=$(curl -s -o "$T/clean.pb.gz" -w '%{http_code}' "$F/api/0/profiles/$POOL_IDS"); clean=$(( $(ms) - t ))
assert_eq "merge of 15 ids through the proxy" 200 "$code"
echo "GET /P0.pool/ 500 InternalError 2" >"$RULES"
t=$(ms); code=$(curl -s -o "$T/retried.pb.gz" -w '%{http_code}' "$F/api/0/profiles/$POOL_IDS"); retried=$(( $(ms) - t ))
: >"$RULES"
assert_eq "merge with every GET failing twice: 200" 200 "$code"
check "merge with retries: the same bytes" cmp -s "$T/clean.pb.gz" "$T/retried.pb.gz"
echo "merge of 15: ${clean} ms clean, ${retried} ms with 2 retries per GET ($(uptime))" >&2
check "retries' back-offs overlap: ${retried} ms vs ${clean} ms clean (sequential: +3750 ms)" \
    test "$retried" -lt $((clean + 2000))
stop_server; URL=$A

# a DELETE S3 refuses does not end the retention pass: t2/ (its own lease)
# holds an old profile in aaa, whose DELETEs fail, and one in zzz after it
for svc in aaa zzz; do
    code=$(s3curl PUT "/t2/P0.$svc/1/$(digest $svc 0 "" 1600000000 "$T/old0.pb.gz" sha)" -o /dev/null -w '%{http_code}' --data-binary @"$T/old0.pb.gz")
    assert_eq "t2: old profile of $svc put" 200 "$code"
done
echo "DELETE /t2/P0.aaa/ 403 AccessDenied *" >"$RULES"
DATA="s3://$B/t2" start_server --s3-endpoint "$PX" --retention 30d || t_done
for ((i = 0; i < 100; i++)); do grep -q "retention:" "$SERVER_LOG" && break; sleep 0.2; done
stop_server; URL=$A
: >"$RULES"
assert_contains "t2: the refused DELETE is logged, and the count of the rest" \
    "$(grep "retention:" "$SERVER_LOG")" "AccessDenied: injected by s3_fault.py (the rest of the pass went on: 1 deleted)"
ZKEY="/t2/P0.zzz/1/$(digest zzz 0 "" 1600000000 "$T/old0.pb.gz" sha)"
assert_eq "t2: zzz pruned after aaa's failure" 404 "$(s3curl GET "$ZKEY" -o /dev/null -w '%{http_code}')"
AKEY="/t2/P0.aaa/1/$(digest aaa 0 "" 1600000000 "$T/old0.pb.gz" sha)"
assert_eq "t2: aaa's profile still there (S3 refused)" 200 "$(s3curl GET "$AKEY" -o /dev/null -w '%{http_code}')"

# bucket names virtual-hosted HTTPS cannot reach
for b in my.bucket my_bucket; do
    out=$(env -u AWS_ENDPOINT_URL_S3 -u AWS_ENDPOINT_URL timeout 30 "$PROFEFS" serve --data "s3://$b" --addr 127.0.0.1:0 2>&1); rc=$?
    check "bucket $b on AWS: refused at start" test "$rc" -ne 0 -a "$rc" -ne 124
    assert_contains "bucket $b: the way out" "$out" "S3 bucket \"$b\": a name with '.' or '_' cannot be reached virtual-hosted over HTTPS; for path-style addressing pass --s3-endpoint https://s3.us-east-1.amazonaws.com"
done

t_done
