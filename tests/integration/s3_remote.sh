#!/usr/bin/env bash
# s3_remote.sh — the FUSE views of an S3-backed node, on a real S3 server
# (Ceph radosgw started here by tests/tools/rgw.sh):
#   - `profefs mount --remote` against a node whose ids are object keys
#     (P0.<service>/<type>/<digest>[,labels]): ls, stat sizes, read bytes
#     equal to the HTTP GET, names equal to the node's own mount, a label
#     holding '+' and ' ', cp in (seen by a second node over the bucket),
#     merge file equal to `go tool pprof -proto`, rm;
#   - the HTTP side of such ids: a merge of ids joined by '+' where an id
#     holds a '+' (%2B), a Content-Disposition that stays one file name.
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"

s3_start
ids_of() { json "' '.join(p['id'] for p in j['body'])"; }
stamp() { date -u -d "@$1" +%Y%m%dT%H%M%SZ; }
# name KEY: the FUSE name of an S3 key (its digest; created_at = the digest's time)
name() { local d=${1#*/*/}; d=${d%%,*}; echo "$(stamp "$2")_$d.pb.gz"; }

LMNT="$T/lmnt"
start_server --mount "$LMNT" || t_done
A=$URL; APID=$SERVER_PID
start_server || t_done
NB=$URL; BPID=$SERVER_PID

NOW=$(date -u +%s)
T0=$((NOW - 600))
for k in 0 1 2 3 4; do retime "$FIXTURES/cpu_00$k.pb.gz" "$T/c$k.pb.gz" $((T0 + k)); done
ID0=$(URL=$A ingest "$T/c0.pb.gz" web cpu "host=h0")
ID1=$(URL=$A ingest "$T/c1.pb.gz" web cpu "host=h0")
# a label value with a space, and an object written by "profefe" whose raw
# label holds a '+' (profefs reads it as a space, as labels are unescaped)
ID2=$(URL=$A ingest "$T/c2.pb.gz" web cpu "v=a%2520c")
retime "$FIXTURES/cpu_005.pb.gz" "$T/c5.pb.gz" $((T0 + 5))
PK=$(python3 - $((T0 + 5)) <<'PY'
import struct, sys
raw = struct.pack(">I", int(sys.argv[1])) + bytes([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])
alpha = "0123456789abcdefghijklmnopqrstuv"
bits = int.from_bytes(raw, "big") << 4
print("".join(alpha[(bits >> (5 * (19 - i))) & 31] for i in range(20)))
PY
)
ID5="P0.web/1/$PK,w=x+y"
code=$(s3curl PUT "/$ID5" -o /dev/null -w '%{http_code}' --data-binary @"$T/c5.pb.gz")
assert_eq "PUT of a profefe object whose key holds '+'" 200 "$code"
assert_eq "ids are S3 keys" "P0.web/1/ P0.web/1/ P0.web/1/" "${ID0:0:9} ${ID1:0:9} ${ID2:0:9}"
assert_contains "the key holds the raw label" "$ID2" ",v=a c"
LD="v=a%20c"   # its canonical label string = its label directory

# ---- the HTTP side of keys holding '+' and ' ' ------------------------------------------
curl -s -o "$T/g2" "$A/api/0/profiles/$(esc "$ID2")"
check "GET of a key with ' '" cmp -s "$T/g2" "$T/c2.pb.gz"
curl -s -o "$T/g5" "$A/api/0/profiles/$(esc "$ID5")"
check "GET of a key with '+'" cmp -s "$T/g5" "$T/c5.pb.gz"
go tool pprof -proto "$T/c2.pb.gz" "$T/c5.pb.gz" >"$T/want25.pb.gz" 2>>"$T/pprof.err"
curl -s -D "$T/hdr" -o "$T/m25.pb.gz" "$A/api/0/profiles/$(esc "$ID2")+$(esc "$ID5")"
same_profile "merge of two keys joined by '+', one holding %2B, one %20" "$T/want25.pb.gz" "$T/m25.pb.gz"
disp=$(tr -d '\r' <"$T/hdr" | grep -i '^content-disposition:')
check "Content-Disposition is one plain file name ($disp)" \
    grep -qE '^[Cc]ontent-[Dd]isposition: attachment; filename="[A-Za-z0-9._,=+-]+"$' <<<"$disp"
http GET "$A/api/0/profiles/$(esc "$ID0")%20$(esc "$ID1")"
assert_eq "keys joined by %20 read as one key: 404, not a wrong merge" 404 "$HTTP_STATUS"

# ---- profefs mount --remote against the S3 node -------------------------------------------
RMNT="$T/rmnt"
mount_remote "$RMNT" "$A" --timeout 5s || t_done
RMPID=$RPID

assert_eq "remote mount: services" "web" "$(ls "$RMNT" | grep -vxE 'merge|diff' | tr '\n' ' ' | sed 's/ $//')"
assert_eq "remote mount: label directories" "host=h0 $LD w=x%20y" "$(ls "$RMNT/web/cpu" | tr '\n' ' ' | sed 's/ $//')"
N0=$(name "$ID0" $T0); N1=$(name "$ID1" $((T0 + 1))); N2=$(name "$ID2" $((T0 + 2)))
assert_eq "remote mount: names are <time>_<digest>" "$N0 $N1" "$(ls "$RMNT/web/cpu/host=h0" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "remote mount: same names as the node's own mount" \
    "$(ls "$LMNT/web/cpu/host=h0" | tr '\n' ' ')" "$(ls "$RMNT/web/cpu/host=h0" | tr '\n' ' ')"
curl -s -o "$T/g0" "$A/api/0/profiles/$(esc "$ID0")"
check "remote mount: bytes equal the HTTP GET" cmp -s "$RMNT/web/cpu/host=h0/$N0" "$T/g0"
assert_eq "remote mount: stat size" "$(stat -c %s "$T/g0")" "$(stat -c %s "$RMNT/web/cpu/host=h0/$N0")"
assert_eq "remote mount: mtime = created_at" "$T0" "$(stat -c %Y "$RMNT/web/cpu/host=h0/$N0")"
check "remote mount: the file in the ' ' label directory" cmp -s "$RMNT/web/cpu/$LD/$N2" "$T/c2.pb.gz"
assert_eq "remote mount: its labels xattr" "v=a%20c" \
    "$(getfattr --only-values -n user.profefs.labels "$RMNT/web/cpu/$LD/$N2" 2>/dev/null)"
N5=$(name "$ID5" $((T0 + 5)))
check "remote mount: profefe's object whose key holds '+'" cmp -s "$RMNT/web/cpu/w=x%20y/$N5" "$T/c5.pb.gz"

# a second remote mount that never listed: a typed path resolves at once
R2="$T/rmnt2"
mount_remote "$R2" "$NB" --timeout 5s
R2PID=$RPID
check "remote mount on B: a path typed before any ls reads" cmp -s "$R2/web/cpu/host=h0/$N1" "$T/c1.pb.gz"

# cp in through the remote mount: stored on S3, seen by B at once
cp "$T/c3.pb.gz" "$RMNT/web/cpu/host=h0/"; rc=$?
assert_eq "remote mount: cp in" 0 "$rc"
http GET "$NB/api/0/profiles?service=web&type=cpu&from=$(utc $((T0 + 3)))&to=$(utc $((T0 + 3)))"
ID3=$(ids_of)
assert_contains "B lists what cp wrote" "$ID3" "P0.web/1/"
assert_contains "with the label directory's labels" "$ID3" ",host=h0"
N3=$(name "$ID3" $((T0 + 3)))
check "remote mount: the copy shows under its canonical name" test -f "$RMNT/web/cpu/host=h0/$N3"
check "remote mount: the copy reads back" cmp -s "$RMNT/web/cpu/host=h0/$N3" "$T/c3.pb.gz"

# merge file = go tool pprof -proto of the same files = HTTP merge
FROM=$(utc $T0); TO=$(utc $((T0 + 4)))
go tool pprof -proto "$T/c0.pb.gz" "$T/c1.pb.gz" "$T/c3.pb.gz" >"$T/want.pb.gz" 2>>"$T/pprof.err"
cat "$RMNT/merge/web/cpu/host=h0/$FROM..$TO" >"$T/got.pb.gz"
same_profile "remote mount: merge file" "$T/want.pb.gz" "$T/got.pb.gz"
curl -s -o "$T/http.pb.gz" "$A/api/0/profiles/merge?service=web&type=cpu&from=$FROM&to=$TO&labels=host=h0"
check "remote mount: merge file = HTTP merge" cmp -s "$T/got.pb.gz" "$T/http.pb.gz"

# rm through the remote mount: gone on B
rm "$RMNT/web/cpu/host=h0/$N1"; rc=$?
assert_eq "remote mount: rm" 0 "$rc"
http GET "$NB/api/0/profiles/$(esc "$ID1")"
assert_eq "B no longer gets what rm deleted" 404 "$HTTP_STATUS"
check "remote mount: the file is gone" test ! -e "$RMNT/web/cpu/host=h0/$N1"
assert_eq "remote mount: ls after rm" "$N0 $N3" "$(ls "$RMNT/web/cpu/host=h0" | tr '\n' ' ' | sed 's/ $//')"

for p in "$RMPID" "$R2PID"; do kill -TERM "$p"; wait "$p"; assert_eq "remote mount exits 0" 0 "$?"; done
SERVER_PID=$BPID; stop_server
SERVER_PID=$APID
t_done
