#!/usr/bin/env bash
# s3_nodes.sh — stateless profefs nodes over one S3 bucket, on a real S3
# server (Ceph radosgw started here by tests/tools/rgw.sh):
#   - two nodes over one bucket: what A ingests B lists, gets, merges and
#     deletes at once, and the other way round;
#   - keys and metadata in profefe's layout; a repeat ingest is the same id;
#   - objects a test writes in profefe's layout with curl --aws-sigv4 are
#     listed and merged; merges equal `go tool pprof -proto` (tests/canon.py);
#   - a clear one-line start-up error for bad credentials, a missing bucket
#     and nothing listening;
#   - kill -9 of a node under load loses nothing it acknowledged;
#   - S3 stopped: 503 with the reason, quickly, never a hang.
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"

s3_start
ids_of() { json "' '.join(p['id'] for p in j['body'])"; }

# ---- start-up errors: one clear line, non-zero exit, quickly ------------------------------
t0=$(date +%s%N)
out=$(AWS_SECRET_ACCESS_KEY=wrong timeout 20 "$PROFEFS" serve --data "$DATA" --addr 127.0.0.1:0 2>&1); rc=$?
check "bad secret: exit non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
assert_contains "bad secret: the reason" "$out" "refused the credentials for bucket \"$B\""
assert_contains "bad secret: S3's code" "$out" "SignatureDoesNotMatch"
assert_eq "bad secret: one line" 1 "$(printf '%s\n' "$out" | wc -l)"
out=$(AWS_ACCESS_KEY_ID=nobody timeout 20 "$PROFEFS" serve --data "$DATA" --addr 127.0.0.1:0 2>&1); rc=$?
assert_contains "unknown key id: the reason" "$out" "InvalidAccessKeyId"
out=$(timeout 20 "$PROFEFS" serve --data "s3://no-such-bucket" --addr 127.0.0.1:0 2>&1); rc=$?
check "missing bucket: exit non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
assert_contains "missing bucket: the reason" "$out" "S3 bucket \"no-such-bucket\" does not exist at $EP"
dead="http://127.0.0.1:$(free_port)"
out=$(timeout 20 "$PROFEFS" serve --data "$DATA" --s3-endpoint "$dead" --addr 127.0.0.1:0 2>&1); rc=$?
check "nothing listening: exit non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
assert_contains "nothing listening: the reason" "$out" "S3 at $dead unavailable"
out=$(env -u AWS_SECRET_ACCESS_KEY timeout 20 "$PROFEFS" serve --data "$DATA" --addr 127.0.0.1:0 2>&1)
assert_contains "no credentials: the reason" "$out" "AWS_SECRET_ACCESS_KEY must be set"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "five failed start-ups took ${ms} ms (< 30 s)" test "$ms" -lt 30000
# --s3-endpoint wins over the environment
AWS_ENDPOINT_URL_S3="$dead" start_server --s3-endpoint "$EP" || t_done
check "--s3-endpoint is used over AWS_ENDPOINT_URL_S3" test -n "$URL"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; SERVER_PID=""

# ---- two nodes over one bucket ------------------------------------------------------------
start_server || t_done
A=$URL; APID=$SERVER_PID
MNT="$T/mnt"
start_server --mount "$MNT" || t_done
NB=$URL; BPID=$SERVER_PID

declare -a IDS
for k in 0 1 2 3 4; do
    IDS[$k]=$(URL=$A ingest "$FIXTURES/cpu_00$k.pb.gz" web cpu "host=h$((k % 2)),zone=z1")
done
check "5 ingests on A answered ids" test "${#IDS[@]}" -eq 5 -a -n "${IDS[4]}"
# cpu_000 has time_nanos 1795556966: profefe's key of that second
assert_contains "id is profefe's key" "${IDS[0]}" "P0.web/1/"
assert_contains "id ends with the raw labels" "${IDS[0]}" ",host=h0,zone=z1"
d=${IDS[0]#P0.web/1/}; d=${d%%,*}
assert_eq "digest is 20 characters" 20 "${#d}"
again=$(URL=$A ingest "$FIXTURES/cpu_000.pb.gz" web cpu "zone=z1,host=h0")
assert_eq "a repeat ingest (on A) answers the same id" "${IDS[0]}" "$again"
again=$(URL=$NB ingest "$FIXTURES/cpu_000.pb.gz" web cpu "host=h0,zone=z1")
assert_eq "a repeat ingest on B answers the same id" "${IDS[0]}" "$again"

# labels that profefe's key format cannot carry are refused, not lost
for bad in 'a=x%252Cy' 'a=x%2Fy' 'a=x%0Ay' 'a%253Db=x'; do
    http POST "$A/api/0/profiles?service=web&type=cpu&labels=$bad" --data-binary @"$FIXTURES/cpu_007.pb.gz"
    assert_eq "labels $bad: 400" 400 "$HTTP_STATUS"
    assert_contains "labels $bad: the reason" "$HTTP_BODY" "cannot be written in profefe's S3 key"
done
# the object as profefe wrote it: key and user metadata
s3curl HEAD "/${IDS[0]}" -I -o "$T/head.txt"
hdr=$(tr -d '\r' <"$T/head.txt")
assert_contains "metadata service" "$hdr" "x-amz-meta-service: web"
assert_contains "metadata type" "$hdr" "x-amz-meta-type: cpu"
assert_contains "metadata labels" "$hdr" "x-amz-meta-labels: host=h0,zone=z1"
# (radosgw turns the '_' of a metadata name into '-', AWS keeps it)
check "metadata created_at" grep -qE '^x-amz-meta-created[-_]at: 2026-11-24T21:49:26Z' <<<"$hdr"

FROM=$(utc 1795556966); TO=$(utc 1795556970)
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$FROM&to=$TO"
assert_eq "B lists A's profiles" 200 "$HTTP_STATUS"
assert_eq "B lists the 5 ids in time order" "${IDS[*]}" "$(ids_of)"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$(utc 1795556967)&to=$(utc 1795556968)"
assert_eq "a time range seeks" "${IDS[1]} ${IDS[2]}" "$(ids_of)"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$FROM&to=$TO&labels=host=h1"
assert_eq "label filter" "${IDS[1]} ${IDS[3]}" "$(ids_of)"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$FROM&to=$TO&limit=2"
assert_eq "limit" "${IDS[0]} ${IDS[1]}" "$(ids_of)"
curl -s -o "$T/got0" "$NB/api/0/profiles/$(esc "${IDS[0]}")"
check "B gets A's bytes (path-escaped id)" cmp -s "$T/got0" "$FIXTURES/cpu_000.pb.gz"
curl -s -o "$T/got0b" "$NB/api/0/profiles/${IDS[0]}"
check "B gets A's bytes (raw id)" cmp -s "$T/got0b" "$FIXTURES/cpu_000.pb.gz"
http GET "$NB/api/0/services"
assert_eq "services" '["web"]' "$(json 'json.dumps(j["body"]).replace(" ","")')"
HID=$(URL=$NB ingest "$FIXTURES/heap_000.pb.gz" web heap)
assert_eq "heap key without labels" "P0.web/2/" "${HID:0:9}"
check "heap key has no label part" test "${#HID}" -eq 29

# merges equal go tool pprof -proto
go tool pprof -proto "$FIXTURES"/cpu_00[0-4].pb.gz >"$T/want.pb.gz" 2>>"$T/pprof.err"
curl -s -o "$T/got.pb.gz" "$A/api/0/profiles/merge?service=web&type=cpu&from=$FROM&to=$TO"
same_profile "merge of 5 on A" "$T/want.pb.gz" "$T/got.pb.gz"
go tool pprof -proto "$FIXTURES/cpu_001.pb.gz" "$FIXTURES/cpu_003.pb.gz" >"$T/want2.pb.gz" 2>>"$T/pprof.err"
curl -s -o "$T/got2.pb.gz" "$NB/api/0/profiles/$(esc "${IDS[1]}")+$(esc "${IDS[3]}")"
same_profile "merge of ids on B" "$T/want2.pb.gz" "$T/got2.pb.gz"
curl -s -o "$T/got3.pb.gz" "$NB/api/0/profiles/merge?service=web&type=cpu&from=$FROM&to=$TO&labels=host=h1"
same_profile "merge with a label filter on B" "$T/want2.pb.gz" "$T/got3.pb.gz"

# the mount on B: A's profiles by name, merges, cp ingests, rm deletes
STAMP=$(date -u -d @1795556966 +%Y%m%dT%H%M%SZ)
LD="$MNT/web/cpu/host=h0,zone=z1"
check "mount lists A's profile in its label directory" grep -qx "${STAMP}_$d.pb.gz" <(ls "$LD")
check "mount reads A's bytes" cmp -s "$LD/${STAMP}_$d.pb.gz" "$FIXTURES/cpu_000.pb.gz"
# each profile is in the directory of its label set; a merge file's stat
# never merges (size 0), so cmp reads it through cat
check "mount: every listed cpu file opens" sh -c "find '$MNT/web/cpu' -name '*.pb.gz' | grep -q . && find '$MNT/web/cpu' -name '*.pb.gz' -exec cat {} + >/dev/null"
check "merge file on the mount equals the HTTP merge on A" cmp -s <(cat "$MNT/merge/web/cpu/$FROM..$TO") "$T/got.pb.gz"
cp "$FIXTURES/cpu_006.pb.gz" "$MNT/web/cpu/"; rc=$?
assert_eq "cp into the mount" 0 "$rc"
http GET "$A/api/0/profiles?service=web&type=cpu&from=$(utc 1795556973)&to=$(utc 1795556973)"   # cpu_006's time
CPID=$(ids_of)
assert_eq "A lists what cp wrote on B's mount" "P0.web/1/" "${CPID:0:9}"
cd6=${CPID#P0.web/1/}
rm "$MNT/web/cpu/$(date -u -d @1795556973 +%Y%m%dT%H%M%SZ)_$cd6.pb.gz"; rc=$?
assert_eq "rm on the mount" 0 "$rc"
http GET "$A/api/0/profiles/$(esc "$CPID")"
assert_eq "A no longer gets what rm deleted" 404 "$HTTP_STATUS"

# delete on B: gone on A at once
http DELETE "$NB/api/0/profiles/$(esc "${IDS[4]}")"
assert_eq "B deletes A's profile" 200 "$HTTP_STATUS"
http GET "$A/api/0/profiles/$(esc "${IDS[4]}")"
assert_eq "A no longer gets it" 404 "$HTTP_STATUS"
http DELETE "$A/api/0/profiles/$(esc "${IDS[4]}")"
assert_eq "a second delete is 404" 404 "$HTTP_STATUS"
http GET "$A/api/0/profiles?service=web&type=cpu&from=$FROM&to=$TO"
assert_eq "A lists 4" "${IDS[0]} ${IDS[1]} ${IDS[2]} ${IDS[3]}" "$(ids_of)"
http GET "$A/api/0/profiles/P0.web%2F1%2Fdc30cpit2m8u37adbre0"
assert_eq "unknown key is 404" 404 "$HTTP_STATUS"
http GET "$A/api/0/profiles/nonsense%2Fkey"
assert_eq "malformed id is 400" 400 "$HTTP_STATUS"

# ---- objects written by "profefe" (curl --aws-sigv4) are listed and merged -----------------
# xid of 1795556970 (cpu_004's second) with profefe's machine/pid/counter bytes
retime "$FIXTURES/cpu_005.pb.gz" "$T/ext.pb.gz" 1795556970
PK=$(python3 - <<'PY'
import struct
raw = struct.pack(">I", 1795556970) + bytes([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])
alpha = "0123456789abcdefghijklmnopqrstuv"
bits = int.from_bytes(raw, "big") << 4
print("".join(alpha[(bits >> (5 * (19 - i))) & 31] for i in range(20)))
PY
)
KEY="P0.ext/1/$PK,i=0,zone=z1"
code=$(s3curl PUT "/$KEY" -o /dev/null -w '%{http_code}' --data-binary @"$T/ext.pb.gz" \
       -H "x-amz-meta-service: ext" -H "x-amz-meta-type: cpu" -H "x-amz-meta-labels: i=0,zone=z1" \
       -H "x-amz-meta-created_at: 2026-11-24T21:49:30Z")
assert_eq "PUT of a profefe-layout object" 200 "$code"
s3curl PUT "/profefs-other/not-a-profile" -o /dev/null --data-binary x
s3curl PUT "/P0.ext/1/garbage" -o /dev/null --data-binary x
http GET "$A/api/0/services"
assert_eq "services include profefe's, not other prefixes" '["ext","web"]' "$(json 'json.dumps(j["body"]).replace(" ","")')"
http GET "$NB/api/0/profiles?service=ext&type=cpu&from=$FROM&to=$TO"
assert_eq "profefe's object listed with its key as id" "$KEY" "$(ids_of)"
assert_eq "its labels" "i=0,zone=z1" "$(json "','.join(l['key']+'='+l['value'] for l in j['body'][0]['labels'])")"
assert_eq "its created_at from the digest" "2026-11-24T21:49:30Z" "$(json "j['body'][0]['created_at']")"
curl -s -o "$T/gotx.pb.gz" "$NB/api/0/profiles/merge?service=ext&type=cpu&from=$FROM&to=$TO&labels=zone=z1"
same_profile "merge of profefe's object" "$T/ext.pb.gz" "$T/gotx.pb.gz"

# ---- kill -9 of a node under load loses nothing acknowledged -------------------------------
for k in $(seq 0 7); do retime "$FIXTURES/cpu_00$k.pb.gz" "$T/load$k.pb.gz" $((1795560000 + k)); done
load() { # load WORKER: ingests until A dies, writes acknowledged ids to $T/ack.W
    local w=$1 n=0 out
    while :; do
        out=$(curl -s --max-time 10 --data-binary @"$T/load$((n % 8)).pb.gz" \
              "$A/api/0/profiles?service=load&type=cpu&labels=w=$w,n=$n") || break
        case "$out" in *'"code":200'*) ;; *) break ;; esac
        out=${out#*'"id":"'}; echo "${out%%'"'*}" >>"$T/ack.$w"   # no python: keep the pace
        n=$((n + 1))
    done
}
LPIDS=()
for w in 1 2 3 4; do load $w & LPIDS+=($!); done
sleep 4
kill -KILL "$APID"; wait "$APID" 2>/dev/null
wait "${LPIDS[@]}"
cat "$T"/ack.* | sort >"$T/acked"
nack=$(wc -l <"$T/acked")
check "load acknowledged some ingests ($nack)" test "$nack" -gt 10
http GET "$NB/api/0/profiles?service=load&type=cpu&from=$(utc 1795560000)&to=$(utc 1795560010)"
ids_of | tr ' ' '\n' | sort >"$T/listed"
missing=$(comm -23 "$T/acked" "$T/listed" | wc -l)
assert_eq "every acknowledged id is listed on B after kill -9 of A" 0 "$missing"

# ---- retention from two nodes at once -------------------------------------------------------
OLD=()
for k in 0 1 2 3 4; do
    retime "$FIXTURES/cpu_01$k.pb.gz" "$T/old$k.pb.gz" $((1600000000 + k * 600))
    OLD+=("$(URL=$NB ingest "$T/old$k.pb.gz" old cpu "k=$k")")
done
retime "$FIXTURES/heap_005.pb.gz" "$T/oldh.pb.gz" 1600000100
OLD+=("$(URL=$NB ingest "$T/oldh.pb.gz" web heap)")
check "6 old profiles ingested" test "${#OLD[@]}" -eq 6 -a -n "${OLD[5]}"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
web_before=$(ids_of)
start_server --retention 30d || t_done
CPID1=$SERVER_PID
start_server --retention 30d || t_done
CPID2=$SERVER_PID
gone=0
for ((i = 0; i < 100; i++)); do
    left=0
    for id in "${OLD[@]}"; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$NB/api/0/profiles/$(esc "$id")")" = 404 ] || left=$((left + 1))
    done
    [ "$left" = 0 ] && { gone=1; break; }
    sleep 0.2
done
assert_eq "two nodes with --retention 30d deleted every old profile" 1 "$gone"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
assert_eq "retention kept the younger profiles" "$web_before" "$(ids_of)"
http GET "$NB/api/0/services"
assert_contains "service 'old' is gone with its last profile" "$(json 'j["body"]')" "web"
check "service 'old' not listed" test "$(json '"old" in j["body"]')" = False
for pid in "$CPID1" "$CPID2"; do kill -TERM "$pid"; wait "$pid"; assert_eq "retention node exits 0" 0 "$?"; done
errs=$(grep -h "retention:" "$T/server.4.log" "$T/server.5.log" | grep -v "retention: deleted")
assert_eq "no retention error on either node" "" "$errs"
ndel=$(grep -ho "retention: deleted [0-9]*" "$T/server.4.log" "$T/server.5.log" | awk '{ n += $3 } END { print n + 0 }')
check "the two nodes deleted at least the 6 old profiles between them ($ndel)" test "$ndel" -ge 6

# ---- S3 stopped: 503 with the reason, quickly ------------------------------------------------
"$RGW" stop "$T/rgw" >/dev/null 2>&1
t0=$(date +%s%N)
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$FROM&to=$TO"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq "S3 down: list is 503" 503 "$HTTP_STATUS"
assert_contains "S3 down: the reason" "$HTTP_BODY" "S3 at $EP unavailable"
check "S3 down: answered in ${ms} ms (< 5 s)" test "$ms" -lt 5000
http POST "$NB/api/0/profiles?service=web&type=cpu" --data-binary @"$FIXTURES/cpu_006.pb.gz"
assert_eq "S3 down: ingest is 503" 503 "$HTTP_STATUS"
http GET "$NB/api/0/profiles/$(esc "${IDS[0]}")"
assert_eq "S3 down: get is 503" 503 "$HTTP_STATUS"
t0=$(date +%s%N)
out=$(timeout 30 ls "$MNT/web/cpu/host=h1,zone=z1" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_contains "S3 down: ls on the mount is EIO" "$out" "Input/output error"
check "S3 down: ls answered in ${ms} ms (< 10 s)" test "$ms" -lt 10000

SERVER_PID=$BPID
t_done
