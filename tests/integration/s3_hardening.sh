#!/usr/bin/env bash
# s3_hardening.sh — what the second review of the S3 store found, on a real
# S3 server (Ceph radosgw, tests/tools/rgw.sh), under a store prefix (t1/):
#   - foreign keys another program put in the bucket (a control character
#     in the labels, in a service name): find, merge, services and labels
#     still answer, each key is logged once and skipped, and retention
#     goes on past them to the services after;
#   - connections are pooled per node: a series of merges leaves (almost)
#     no socket to radosgw in TIME_WAIT (each merge closed its 16);
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

t_done
