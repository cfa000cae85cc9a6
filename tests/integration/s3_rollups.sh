#!/usr/bin/env bash
# s3_rollups.sh — rollups of the S3 store (store/s3/s3_rollup.c) on a real
# S3 server (Ceph radosgw started by tests/tools/rgw.sh), two nodes over
# one bucket:
#   - a merge over finished hours equals `go tool pprof -proto` of the raw
#     files and is byte for byte the merge without rollups (limit=);
#   - it leaves rollup objects under R0.<service>/<type>/<filter>/ whose
#     names carry the count of profiles they merged, and a later merge reads
#     them (a rollup replaced by other bytes changes the answer);
#   - a late arrival written in profefe's layout with curl --aws-sigv4, an
#     ingest on the other node and a delete each change the answer
#     correctly (never a stale rollup);
#   - a label filter gets rollups of its own;
#   - a bucket policy that denies R0.: merges still answer (no rollups);
#   - profefe's listing (prefix P0., delimiter /) and our services never
#     show rollups; retention deletes the rollups of expired slots.
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"

s3_start
# s3keys PREFIX [DELIMITER]: the keys (and common prefixes) S3 lists, one a line
s3keys() {
    local q="list-type=2&prefix=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1")"
    [ -n "${2:-}" ] && q="delimiter=%2F&$q"
    curl -s -m 30 --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$EP/$B?$q" |
        python3 -c 'import re, sys; print("\n".join(re.findall(r"<(?:Key|Prefix)>([^<]*)</", sys.stdin.read())))' |
        grep -v "^$1\$"
}
differ() { ! cmp -s "$1" "$2"; }
# gomerge OUT FILE...: go tool pprof -proto of the files
gomerge() { local o=$1; shift; go tool pprof -proto "$@" >"$o" 2>"$T/go.err" || fail "go tool pprof: $(cat "$T/go.err")"; }
# merge NODE OUT [EXTRA QUERY]: the merge of [H, H + 2h) of service roll
merge() {
    curl -s -o "$2" -w '%{http_code}' --max-time 60 \
         "$1/api/0/profiles/merge?service=roll&type=cpu&from=$(utc "$H")&to=$(utc $((H + 7199)))${3:-}"
}

start_server || t_done
A=$URL; APID=$SERVER_PID
start_server || t_done
NB=$URL; BPID=$SERVER_PID

# Two finished hours (2026-11-24 10:00 and 11:00 UTC), 4 profiles each, over
# two hosts; one profile just before and one just after the range.
H=1795514400
check "H is an hour" test $((H % 3600)) -eq 0
FILES=() H0=()
for k in 0 1 2 3 4 5 6 7; do
    t=$((H + (k / 4) * 3600 + (k % 4) * 600 + 7))
    retime "$FIXTURES/cpu_00$k.pb.gz" "$T/p$k.pb.gz" "$t"
    URL=$A ingest "$T/p$k.pb.gz" roll cpu "host=h$((k % 2))" >/dev/null
    FILES+=("$T/p$k.pb.gz")
    [ $((k % 2)) = 0 ] && H0+=("$T/p$k.pb.gz")
done
retime "$FIXTURES/cpu_008.pb.gz" "$T/before.pb.gz" $((H - 1))
retime "$FIXTURES/cpu_009.pb.gz" "$T/after.pb.gz" $((H + 7200))
URL=$NB ingest "$T/before.pb.gz" roll cpu host=h0 >/dev/null
URL=$NB ingest "$T/after.pb.gz" roll cpu host=h1 >/dev/null
http GET "$A/api/0/profiles?service=roll&type=cpu&from=$(utc $((H - 10)))&to=$(utc $((H + 7300)))"
assert_eq "10 profiles stored" 10 "$(json 'len(j["body"])')"
check "no rollup before a merge" test -z "$(s3keys R0.)"

# ---- the first merge: equal to go's and to the raw merge; builds rollups ------------------
gomerge "$T/go8.pb.gz" "${FILES[@]}"
assert_eq "merge over 2 finished hours on A" 200 "$(merge "$A" "$T/m1.pb.gz")"
same_profile "merge over finished hours = go tool pprof -proto" "$T/go8.pb.gz" "$T/m1.pb.gz"
assert_eq "raw merge (limit=, no rollups)" 200 "$(merge "$A" "$T/raw.pb.gz" "&limit=1000")"
check "merge with rollups is byte for byte the raw merge" cmp -s "$T/m1.pb.gz" "$T/raw.pb.gz"
keys=$(s3keys "R0.roll/1/_/")
assert_eq "two hourly rollups of 4 profiles each" "1 1" \
    "$(grep -c "^R0.roll/1/_/0$H.0.4.[0-9a-f]\{16\}\$" <<<"$keys") $(grep -c "^R0.roll/1/_/0$((H + 3600)).0.4." <<<"$keys")"
assert_eq "no other rollup (the day is not covered)" 2 "$(grep -c . <<<"$keys")"

# ---- B reads them: same bytes; and it really reads them -----------------------------------
assert_eq "merge on B" 200 "$(merge "$NB" "$T/m2.pb.gz")"
check "B's merge (from rollups) has A's bytes" cmp -s "$T/m1.pb.gz" "$T/m2.pb.gz"
R1=$(grep "/0$H.0." <<<"$keys")
assert_eq "replace a rollup's bytes" 200 "$(s3curl PUT "/$R1" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_010.pb.gz")"
merge "$NB" "$T/m3.pb.gz" >/dev/null
check "the merge reads the rollup object (its bytes changed the answer)" differ "$T/m1.pb.gz" "$T/m3.pb.gz"
s3curl DELETE "/$R1" -o /dev/null
merge "$NB" "$T/m4.pb.gz" >/dev/null
check "rollup deleted: the merge is right again" cmp -s "$T/m1.pb.gz" "$T/m4.pb.gz"
check "and the rollup was built again" grep -q . <(s3keys "R0.roll/1/_/0$H.0.4.")

# ---- a late arrival written in profefe's layout (curl --aws-sigv4) --------------------------
LT=$((H + 1800))
retime "$FIXTURES/cpu_011.pb.gz" "$T/late1.pb.gz" "$LT"
PK=$(python3 - "$LT" <<'PY'
import struct, sys
raw = struct.pack(">I", int(sys.argv[1])) + bytes([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])
alpha = "0123456789abcdefghijklmnopqrstuv"
bits = int.from_bytes(raw, "big") << 4
print("".join(alpha[(bits >> (5 * (19 - i))) & 31] for i in range(20)))
PY
)
code=$(s3curl PUT "/P0.roll/1/$PK,host=h0" -o /dev/null -w '%{http_code}' --data-binary @"$T/late1.pb.gz" \
       -H "x-amz-meta-service: roll" -H "x-amz-meta-type: cpu" -H "x-amz-meta-labels: host=h0" \
       -H "x-amz-meta-created_at: $(utc "$LT")Z")
assert_eq "late arrival PUT in profefe's layout" 200 "$code"
gomerge "$T/go9.pb.gz" "${FILES[@]}" "$T/late1.pb.gz"
merge "$A" "$T/m5.pb.gz" >/dev/null
same_profile "after profefe's late arrival: = go of 9 files" "$T/go9.pb.gz" "$T/m5.pb.gz"
check "after profefe's late arrival: not the stale answer" differ "$T/m1.pb.gz" "$T/m5.pb.gz"
merge "$A" "$T/raw5.pb.gz" "&limit=1000" >/dev/null
check "after profefe's late arrival: byte for byte the raw merge" cmp -s "$T/raw5.pb.gz" "$T/m5.pb.gz"
check "a rollup of 5 profiles for that hour now" grep -q . <(s3keys "R0.roll/1/_/0$H.0.5.")

# ---- a late arrival on the other node, then a delete -----------------------------------------
retime "$FIXTURES/cpu_012.pb.gz" "$T/late2.pb.gz" $((H + 3600 + 1234))
L2=$(URL=$NB ingest "$T/late2.pb.gz" roll cpu host=h1)
assert_contains "late arrival ingested on B" "$L2" "P0.roll/1/"
gomerge "$T/go10.pb.gz" "${FILES[@]}" "$T/late1.pb.gz" "$T/late2.pb.gz"
merge "$A" "$T/m6.pb.gz" >/dev/null
same_profile "after B's late arrival: A's merge = go of 10 files" "$T/go10.pb.gz" "$T/m6.pb.gz"
D=$(URL=$A ingest "${FILES[1]}" roll cpu host=h1)
http DELETE "$NB/api/0/profiles/$(esc "$D")"
assert_eq "delete on B" 200 "$HTTP_STATUS"
gomerge "$T/go9b.pb.gz" "${FILES[0]}" "${FILES[@]:2}" "$T/late1.pb.gz" "$T/late2.pb.gz"
merge "$A" "$T/m7.pb.gz" >/dev/null
same_profile "after a delete: A's merge = go of the 9 left" "$T/go9b.pb.gz" "$T/m7.pb.gz"
merge "$A" "$T/raw7.pb.gz" "&limit=1000" >/dev/null
check "after a delete: byte for byte the raw merge" cmp -s "$T/raw7.pb.gz" "$T/m7.pb.gz"
merge "$NB" "$T/m8.pb.gz" >/dev/null
check "after a delete: B's merge from the new rollups has the same bytes" cmp -s "$T/m7.pb.gz" "$T/m8.pb.gz"

# ---- a label filter has rollups of its own ---------------------------------------------------
gomerge "$T/goh0.pb.gz" "${H0[@]}" "$T/late1.pb.gz"
assert_eq "merge of host=h0" 200 "$(merge "$A" "$T/h0.pb.gz" "&labels=host=h0")"
same_profile "merge of host=h0 = go of its files" "$T/goh0.pb.gz" "$T/h0.pb.gz"
check "a rollup of host=h0's 3 profiles of the first hour" grep -q . <(s3keys "R0.roll/1/host=h0/0$H.0.3.")
merge "$NB" "$T/h0b.pb.gz" "&labels=host=h0" >/dev/null
check "host=h0 from its rollups: same bytes on B" cmp -s "$T/h0.pb.gz" "$T/h0b.pb.gz"

# ---- a bucket policy that grants only P0.: merges work, without rollups ---------------------
# bucket_policy METHOD [FILE]: PUT (FILE) or DELETE the bucket's policy
bucket_policy() {
    curl -s -m 30 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
         --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
         -X "$1" ${2:+--data-binary @"$2"} "$EP/$B?policy="
}
cat >"$T/policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::$B",
  "Condition": {"StringLike": {"s3:prefix": "R0.*"}}},
 {"Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject", "s3:PutObject"],
  "Resource": "arn:aws:s3:::$B/R0.*"}]}
EOF
code=$(bucket_policy PUT "$T/policy.json")
check "policy denying R0. set ($code)" test "${code:0:1}" = 2
gomerge "$T/goh1.pb.gz" "${FILES[3]}" "${FILES[5]}" "${FILES[7]}" "$T/late2.pb.gz"
assert_eq "R0. denied: merge of host=h1 still answers" 200 "$(merge "$A" "$T/h1.pb.gz" "&labels=host=h1")"
same_profile "R0. denied: merge of host=h1 = go of its files" "$T/goh1.pb.gz" "$T/h1.pb.gz"
code=$(bucket_policy DELETE)
check "policy removed ($code)" test "${code:0:1}" = 2
assert_eq "R0. denied: no rollup was written" "" "$(s3keys R0.roll/1/host=h1/)"

# ---- nobody else sees rollups -----------------------------------------------------------------
assert_eq "profefe's listing (prefix P0., delimiter /)" "P0.roll/" "$(s3keys P0. /)"
http GET "$A/api/0/services"
assert_eq "services" '["roll"]' "$(json 'json.dumps(j["body"]).replace(" ","")')"
http GET "$A/api/0/profiles?service=roll&type=cpu&from=$(utc $((H - 10)))&to=$(utc $((H + 7300)))"
assert_eq "the list holds profiles only" 0 "$(json 'sum(1 for p in j["body"] if not p["id"].startswith("P0."))')"

# ---- retention deletes the rollups of expired slots ------------------------------------------
check "rollups exist before retention" grep -q . <(s3keys R0.)
stop_server; SERVER_PID=$APID; stop_server
start_server --retention 2d || t_done
for ((i = 0; i < 100; i++)); do
    [ -z "$(s3keys R0.)" ] && [ -z "$(s3keys P0.roll/)" ] && break
    sleep 0.2
done
assert_eq "retention deleted the old profiles" "" "$(s3keys P0.roll/)"
assert_eq "and every rollup of their slots" "" "$(s3keys R0.)"
t_done
