#!/usr/bin/env bash
# s3_upkeep.sh — the rollups and the retention of the S3 store stay bounded
# and cheap (issue 22, points 7 and 9), on a real S3 server (radosgw):
#   - rollups only for the filters of the policy (store/rollup.h): none, one
#     pair, a whole label set; a merge by two pairs of a three-pair set
#     leaves no rollup;
#   - a day whose profiles are all in one hour gets no copy of that hour's
#     rollup;
#   - after a late arrival, the superseded version of an hour's rollup is
#     deleted by a merge once the new one is older than the grace (10 min;
#     2 s here through PROFEFS_TEST_SUPERSEDED_GRACE);
#   - deleting a profile drops the rollups of its slots, for every filter it
#     matches, and no other;
#   - of two nodes with --retention started in one minute, one runs that
#     minute's pass (a lease object put with If-None-Match) and the other
#     skips it; the pass lists the bucket 4 times for one service of one
#     type (services, that service's types, the type's keys up to the
#     cutoff, the rollups) and counts the rollups and their bytes into
#     /debug/metrics (profefs_store_rollups, _rollup_bytes); a node
#     without --retention runs that count too.
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"
s3_start
export PROFEFS_TEST_SUPERSEDED_GRACE=2
# s3keys PREFIX [DELIMITER]: the keys (or common prefixes) listed, one a line
s3keys() {
    local q="list-type=2&prefix=$(esc "$1")"
    [ -n "${2:-}" ] && q="delimiter=%2F&$q"
    curl -s -m 30 --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$EP/$B?$q" |
        python3 -c 'import re, sys; print("\n".join(re.findall(r"<(?:Key|Prefix)>([^<]*)</", sys.stdin.read())))' |
        grep -v "^$1\$"
}
metric() { curl -s "$1/debug/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
# merge FROM TO [LABELS]: status of the merge of service f
merge() {
    curl -s -o "$T/m.pb.gz" -w '%{http_code}' --max-time 60 \
         "$URL/api/0/profiles/merge?service=f&type=cpu&from=$(utc "$1")&to=$(utc "$2")${3:+&labels=$3}"
}

start_server || t_done
A=$URL
# a day that has ended, an hour H of it, and the next hour
D=$(( ($(date +%s) / 86400 - 3) * 86400 ))
H=$((D + 10 * 3600)); H2=$((H + 3600))
IDS=()
for k in 0 1 2; do
    retime "$FIXTURES/cpu_00$k.pb.gz" "$T/p$k.pb.gz" $((H + 60 + k * 600))
    IDS+=("$(ingest "$T/p$k.pb.gz" f cpu "a=1,b=2,c=3")")
done
for k in 3 4; do
    retime "$FIXTURES/cpu_00$k.pb.gz" "$T/p$k.pb.gz" $((H2 + 60 + k * 60))
    ingest "$T/p$k.pb.gz" f cpu x=1 >/dev/null
done

# ---- filters: only those of the policy -------------------------------------------------------
assert_eq "merge by a=1,b=2" 200 "$(merge $H $((H + 3599)) a=1,b=2)"
assert_eq "merge by a=1,b=2,c=3 (a whole set)" 200 "$(merge $H $((H + 3599)) a=1,b=2,c=3)"
assert_eq "merge by a=1 (one pair)" 200 "$(merge $H $((H + 3599)) a=1)"
dirs=$(s3keys R0.f/1/ / | sort | tr '\n' ' ')
assert_eq "rollups of the whole set and of the pair, none of a=1,b=2" \
    "R0.f/1/a=1,b=2,c=3/ R0.f/1/a=1/ " "$dirs"

# ---- a day in one hour: no copy ---------------------------------------------------------------
assert_eq "merge of the day (two hours of profiles)" 200 "$(merge $D $((D + 86399)))"
keys=$(s3keys R0.f/1/_/)
assert_eq "hourly rollups of H and H2 and one of the day" "1 1 1" \
    "$(grep -c "/0$H.0.3." <<<"$keys") $(grep -c "/0$H2.0.2." <<<"$keys") $(grep -c "/0$D.1.5." <<<"$keys")"
assert_eq "merge of the day by a=1 (all in hour H)" 200 "$(merge $D $((D + 86399)) a=1)"
assert_eq "a=1: the hour's rollup only, not a copy for the day" "0$H.0.3" \
    "$(s3keys R0.f/1/a=1/ | sed 's,.*/,,; s,\.[0-9a-f]*$,,' | tr '\n' ' ' | sed 's/ $//')"

# ---- a late arrival: the superseded version goes once the new one is old ---------------------
retime "$FIXTURES/cpu_005.pb.gz" "$T/late.pb.gz" $((H + 3000))
LATE=$(ingest "$T/late.pb.gz" f cpu "a=1,b=2,c=3")
assert_eq "merge of hour H after the late arrival" 200 "$(merge $H $((H + 3599)))"
assert_eq "hour H: the old version beside the new one" "2" "$(s3keys "R0.f/1/_/0$H.0." | grep -c .)"
sleep 3
assert_eq "merge of hour H again, the new version 3 s old" 200 "$(merge $H $((H + 3599)))"
assert_eq "hour H: only the version of 4 profiles is left" "0$H.0.4" \
    "$(s3keys "R0.f/1/_/0$H.0." | sed 's,.*/,,; s,\.[0-9a-f]*$,,')"

# ---- a delete drops the rollups of its slots ------------------------------------------------
merge $D $((D + 86399)) >/dev/null
merge $D $((D + 86399)) a=1 >/dev/null
check "before the delete: rollups of H under a=1" grep -q . <(s3keys "R0.f/1/a=1/0$H.")
http DELETE "$A/api/0/profiles/$(esc "$LATE")"
assert_eq "delete of the late profile" 200 "$HTTP_STATUS"
assert_eq "its hour's and day's rollups are gone, under every filter it matched" "" \
    "$(s3keys R0.f/1/ | grep -e "/0$H\." -e "/0$D\.")"
check "the other hour's rollup stays" grep -q . <(s3keys "R0.f/1/_/0$H2.0.2.")
assert_eq "a merge after the delete" 200 "$(merge $D $((D + 86399)))"
go tool pprof -proto "$T"/p[0-4].pb.gz >"$T/go.pb.gz" 2>/dev/null
same_profile "the merge after the delete = go tool pprof of the 5 left" "$T/go.pb.gz" "$T/m.pb.gz"

# ---- a retention pass: one node a minute, few lists, the rollups counted ----------------------
stop_server
# two nodes started in one minute: one takes the minute's pass (the lease
# S0.retention/<minute>, a PUT with If-None-Match: *), the other skips it
while [ "$(date +%-S)" -gt 45 ]; do sleep 1; done
start_server --retention 3650d || t_done
R1=$URL
start_server --retention 3650d || t_done
R2=$URL
for ((i = 0; i < 100; i++)); do
    [ -n "$(metric "$R1" profefs_store_rollups)$(metric "$R2" profefs_store_rollups)" ] && break
    sleep 0.2
done
sleep 1
l1=$(metric "$R1" profefs_store_s3_lists_total); l2=$(metric "$R2" profefs_store_s3_lists_total)
assert_eq "one node listed the bucket 4 times, the other not at all" "0 4" \
    "$(printf '%s\n' "$l1" "$l2" | sort -n | tr '\n' ' ' | sed 's/ $//')"
RAN=$R1; [ "$l2" = 4 ] && RAN=$R2
assert_eq "the minute's lease" 1 "$(s3keys S0.retention/ | grep -c .)"
want_n=$(s3keys R0. | grep -c .)
want_b=$(curl -s -m 30 --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$EP/$B?list-type=2&prefix=R0." |
         python3 -c 'import re, sys; print(sum(map(int, re.findall(r"<Size>(\d+)</Size>", sys.stdin.read()))))')
check "rollups exist ($want_n)" test "$want_n" -ge 3
assert_eq "metrics: the rollups counted by the pass" "$want_n" "$(metric "$RAN" profefs_store_rollups)"
assert_eq "metrics: their bytes" "$want_b" "$(metric "$RAN" profefs_store_rollup_bytes)"
http GET "$RAN/api/0/services"
assert_eq "services: the lease is not one" '["f"]' "$(json 'json.dumps(j["body"]).replace(" ","")')"
# a node without --retention runs the rollups' upkeep too (at start, then
# hourly): its metrics have the count
start_server || t_done
for ((i = 0; i < 100; i++)); do
    [ -n "$(metric "$URL" profefs_store_rollups)" ] && break
    sleep 0.2
done
assert_eq "metrics of a node without --retention: the rollups counted" "$want_n" \
    "$(metric "$URL" profefs_store_rollups)"
t_done
