#!/usr/bin/env bash
# tests/integration/badinput.sh — hostile input gets a clear 4xx / errno and
# never hurts the server.
#
# Over HTTP: zip bombs (honest, and lying about their size in the gzip
# trailer), an oversized body and an oversized Content-Length, protobuf
# with 11-byte varints, negative and huge lengths, deep nesting, indices
# out of range, truncations; labels of 100 KB and 1 MB, invalid UTF-8 in
# labels and service names, NUL and control characters, ids and paths
# with "../".  Each must get the expected 4xx with a JSON
# {"code":N,"error":"..."} saying what was wrong.  Through the mount: a
# garbage file, a zip bomb and invalid names fail with an errno and store
# nothing.  Afterwards the server still works (a valid ingest reads back
# identical), its VmRSS is below BAD_RSS_MB (default 300) and its log has
# no sanitizer report.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

RSS_LIMIT_MB=${BAD_RSS_MB:-300}
B=$T/bad
MNT=$T/mnt
mkdir -p "$B"

# ---- the inputs -------------------------------------------------------------
python3 - "$B" <<'PY'
import gzip, os, struct, sys, zlib
out = sys.argv[1]

def w(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

def varint(v):
    v &= (1 << 64) - 1
    b = bytearray()
    while True:
        x = v & 0x7F
        v >>= 7
        b.append(x | (0x80 if v else 0))
        if not v:
            return bytes(b)

def key(field, wire):
    return varint(field << 3 | wire)

def vfield(field, v):
    return key(field, 0) + varint(v)

def lfield(field, data):
    return key(field, 2) + varint(len(data)) + data

# A minimal valid profile; every malformed one below changes one thing.
def profile(loc_id=1, fn_name=3, values=(10,), strings=("", "cpu", "nanoseconds", "main"),
            loc_ids=(1,), fn_ids=(1,), line_fn=1, samples=1, extra=b"", mapping=0):
    p = lfield(1, vfield(1, 1) + vfield(2, 2))                     # sample_type
    for _ in range(samples):
        p += lfield(2, vfield(1, loc_id) + b"".join(vfield(2, v) for v in values))
    for i in loc_ids:                                              # location
        loc = vfield(1, i) + lfield(4, vfield(1, line_fn) + vfield(2, 7))
        if mapping:
            loc += vfield(2, mapping)
        p += lfield(4, loc)
    for i in fn_ids:                                               # function
        p += lfield(5, vfield(1, i) + vfield(2, fn_name))
    for s in strings:                                              # string_table
        p += lfield(6, s.encode())
    p += vfield(9, 1_700_000_000 * 10**9)                          # time_nanos
    return p + extra

w("valid.pb", profile())
w("valid.pb.gz", gzip.compress(profile(), mtime=0))
w("loc_out_of_range.pb", profile(loc_id=99))
w("loc_id_zero.pb", profile(loc_id=0, loc_ids=(0,)))
w("dup_loc_ids.pb", profile(loc_ids=(1, 1)))
w("string_out_of_range.pb", profile(fn_name=999))
w("string_negative.pb", profile(fn_name=-1))
w("string0_not_empty.pb", profile(strings=("x", "cpu", "nanoseconds", "main")))
w("too_many_values.pb", profile(values=(1, 2, 3)))
w("line_fn_missing.pb", profile(line_fn=42))
w("mapping_missing.pb", profile(mapping=5))
w("no_samples.pb", profile(samples=0))
# an 11-byte varint (the limit is 10)
w("varint11.pb", profile() + key(9, 0) + b"\xff" * 10 + b"\x01")
# a length of -1 (ten-byte varint) and one of 2^31, with a few bytes after
w("len_negative.pb", profile() + key(6, 2) + varint(-1) + b"abc")
w("len_huge.pb", profile() + key(6, 2) + varint(1 << 31) + b"abc")
# a length varint of ten bytes whose value does not fit in 64 bits
w("len_overflow.pb", profile() + key(6, 2) + b"\xff" * 9 + b"\x7f" + b"abc")
# 100000 nested length-delimited fields (unknown field 100: valid protobuf,
# a decoder must skip it without recursing) and 100000 start-group markers
# (never closed: invalid)
inner = b""
for _ in range(100000):
    inner = lfield(100, inner)
w("deep_nesting.pb", profile() + inner)
w("deep_groups.pb", profile() + key(100, 3) * 100000)
w("truncated.pb", profile()[:-5])
w("truncated.pb.gz", gzip.compress(profile() * 50, mtime=0)[:-40])
w("gzip_header_only.gz", gzip.compress(b"", mtime=0)[:10])
w("gzip_bad_crc.gz", gzip.compress(profile(), mtime=0)[:-8] + b"\0\0\0\0" + struct.pack("<I", len(profile())))
w("gzip_of_gzip.gz", gzip.compress(gzip.compress(profile(), mtime=0), mtime=0))
w("random.bin", os.urandom(4096))
w("empty.bin", b"")
# a valid profile that claims (ISIZE) to inflate to 4 GiB - 1
w("isize_lie_big.gz", gzip.compress(profile(), mtime=0)[:-4] + b"\xff\xff\xff\xff")

def bomb(total, name):
    # After a full flush deflate starts afresh, so every 16 MiB of zeros
    # compresses to the same bytes: compressed once and repeated, which
    # takes a second where deflating 5 GiB took a minute.
    chunk = bytes(1 << 24)
    n, rest = divmod(total, len(chunk))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(bytes(rest)) + c.flush()
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(rest), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, mtime 0, max compression
    w(name, header + block * n + tail + struct.pack("<II", crc, total & 0xffffffff))

bomb(1 << 30, "bomb_1g.gz")                  # honest ISIZE: 1 GiB
bomb((4 << 30) + 64, "bomb_4g_isize64.gz")   # ISIZE wraps to 64 bytes
PY
ls -la "$B" | awk '$5 > 100000 { print "badinput: " $9 " " $5 " bytes" }'

start_server --mount "$MNT" --quiet || t_done

rss_mb() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$SERVER_PID/status"; }

# expect STATUSES PATTERN DESC METHOD PATH [curl args...]: the status is one of
# STATUSES ("400" or "400|413"); the body is {"code":status,"error":"..."}
# and the error contains PATTERN (case-insensitive; "" = any).
expect() {
    local statuses=$1 pattern=$2 desc=${3:0:150} method=$4 path=$5; shift 5
    http "$method" "$URL$path" "$@"
    case "|$statuses|" in
        *"|$HTTP_STATUS|"*) ok ;;
        *) fail "$desc: status $HTTP_STATUS (want $statuses): $(printf '%.200s' "$HTTP_BODY")"; return ;;
    esac
    # libmicrohttpd itself refuses a request line or header over its memory
    # limit (414/431) before the server sees it: no JSON then.
    case "$HTTP_STATUS" in 414|431) ok; return ;; esac
    if python3 - "$T/body" "$HTTP_STATUS" "$pattern" <<'PY'
import json, sys
j = json.load(open(sys.argv[1], "rb"))
assert j["code"] == int(sys.argv[2]), "code field %r" % j.get("code")
assert isinstance(j["error"], str) and j["error"], "no error text"
assert sys.argv[3].lower() in j["error"].lower(), "error %r lacks %r" % (j["error"], sys.argv[3])
PY
    then ok; else fail "$desc: reply is not the expected JSON error: $(printf '%.200s' "$HTTP_BODY")"; fi
}

post() {  # post STATUSES PATTERN FILE QUERY
    expect "$1" "$2" "POST $(basename "$3") ?$4" POST "/api/0/profiles?$4" --data-binary @"$3"
}
Q='service=bad&type=cpu'

# ---- bodies ---------------------------------------------------------------------
for f in loc_out_of_range.pb loc_id_zero.pb dup_loc_ids.pb string_out_of_range.pb \
         string_negative.pb string0_not_empty.pb too_many_values.pb line_fn_missing.pb \
         mapping_missing.pb no_samples.pb varint11.pb len_negative.pb len_huge.pb \
         len_overflow.pb deep_groups.pb truncated.pb truncated.pb.gz \
         gzip_header_only.gz gzip_bad_crc.gz gzip_of_gzip.gz random.bin empty.bin; do
    post 400 "malformed profile" "$B/$f" "$Q"
done

# Unknown fields are legal protobuf: the deeply nested one is stored as is.
id=$(ingest "$B/deep_nesting.pb" deep cpu)
if [ ${#id} = 20 ]; then
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "deeply nested unknown field stored byte for byte" cmp -s "$T/back" "$B/deep_nesting.pb"
else
    fail "profile with a deeply nested unknown field refused: [$id]"
fi

t=$(date +%s%N)
post "400|413" "" "$B/isize_lie_big.gz" "$Q"
post "400|413" "" "$B/bomb_1g.gz" "$Q"
post "400|413" "" "$B/bomb_4g_isize64.gz" "$Q"
echo "badinput: three zip bombs refused in $(( ($(date +%s%N) - t) / 1000000 )) ms"
rss=$(rss_mb)
echo "badinput: server VmRSS after the zip bombs: $rss MB"
check "VmRSS after zip bombs ($rss MB) < $RSS_LIMIT_MB MB" [ "$rss" -lt "$RSS_LIMIT_MB" ]

head -c $((33 << 20)) /dev/urandom > "$B/big.bin"
post 413 "" "$B/big.bin" "$Q"
expect 413 "" "chunked body over the limit" POST "/api/0/profiles?$Q" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$B/big.bin"

# A Content-Length of 10 GB with no body behind it: refused at once, no
# allocation, no waiting for bytes that never come.
status=$(python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /api/0/profiles?service=bad&type=cpu HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: 10000000000\r\n\r\n")
try:
    print(s.recv(100).split(b" ")[1].decode())
except Exception as e:
    print("no answer: %s" % e)
PY
)
assert_eq "Content-Length of 10 GB" 413 "$status"

# ---- query parameters ------------------------------------------------------------
V=$B/valid.pb.gz
post 400 "bad request" "$V" "type=cpu"
post 400 "bad request" "$V" "service=bad&type=nope"
post 400 "bad request" "$V" "service=bad"
post 400 "bad request" "$V" "service=bad&type=cpu%00"
post 400 "bad request" "$V" "$Q&labels=novalue"
post 400 "bad request" "$V" "$Q&labels=k%3D%25zz"
post 400 "bad request" "$V" "$Q&created_at=yesterday"
post 400 "bad request" "$V" "$Q&created_at=2006-13-45T99:99:99"
for s in '' '..' '.' '.hidden' '..%2F..%2Fetc' 'a%2Fb' 'a%00b' 'a%0Ab' 'a%0Db' 'a%7Fb' 'a%1Bb' \
         "$(printf 'x%.0s' {1..300})" '%FF%FE' '%C3%28' '%ED%A0%80'; do
    post 400 "bad request" "$V" "service=$s&type=cpu"
done
# invalid UTF-8 in labels (a lone byte 0xff, a truncated sequence, an
# encoded surrogate): JSON cannot carry them, so they are refused
for l in 'k%3D%FF' 'k%3D%C3' '%FF%3Dv' 'k%3D%ED%A0%80'; do
    post 400 "bad request" "$V" "$Q&labels=$l"
done
# labels of 100 KB (over the 64 KiB limit) and of 1 MB (over any URL limit)
l100k=$(head -c 100000 /dev/zero | tr '\0' a)
post "400|413|414|431" "" "$V" "$Q&labels=k%3D$l100k"
# (too long for a command-line argument: sent by python)
status=$(python3 - "$PORT" "$V" <<'PY2'
import socket, sys
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
try:
    s.sendall(b"POST /api/0/profiles?service=bad&type=cpu&labels=k%3D" + b"a" * 1000000 +
              b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
except OSError:
    pass  # the server may answer and close before reading it all
try:
    print(s.recv(100).split(b" ")[1].decode())
except Exception as e:
    print("no answer: %s" % e)
PY2
)
case "$status" in 4??) ok ;; *) fail "1 MB label in the URL: status $status" ;; esac

# ---- ids and paths ----------------------------------------------------------------
expect "400|404" "" "../ in the path" GET "/api/0/profiles/../../../etc/passwd" --path-as-is
expect "400|404" "" "encoded ../ in an id" GET "/api/0/profiles/..%2F..%2Fetc%2Fpasswd"
expect 400 "" "NUL in an id" GET "/api/0/profiles/%00"
expect 400 "" "NUL inside an id" GET "/api/0/profiles/bo51acqs8snb%00srq3p10"
expect 400 "" "control character in an id" GET "/api/0/profiles/bo51acqs8snb9srq3p1%0A"
expect 400 "" "upper-case id" GET "/api/0/profiles/BO51ACQS8SNB9SRQ3P10"
expect 400 "" "id too long" GET "/api/0/profiles/bo51acqs8snb9srq3p100"
expect 404 "" "unknown id" GET "/api/0/profiles/bo51acqs8snb9srq3p10"
expect 400 "" "merge of ids with a bad one" GET "/api/0/profiles/bo51acqs8snb9srq3p10+..%2Fx"
expect "400|404" "" "DELETE ../" DELETE "/api/0/profiles/..%2F..%2Fx"
expect "400|404|405" "" "DELETE of %00" DELETE "/api/0/profiles/%00"
expect 400 "" "DELETE of an id with a NUL inside" DELETE "/api/0/profiles/bo51acqs8snb%00srq3p10"
W='from=2006-01-02T15:04:05&to=2030-01-02T15:04:05'
expect 400 "" "list without type" GET "/api/0/profiles?service=bad&$W"
expect 400 "" "list with bad from" GET "/api/0/profiles?service=bad&type=cpu&from=x&to=2030-01-02T15:04:05"
expect 400 "" "list with negative limit" GET "/api/0/profiles?$Q&$W&limit=-5"
expect 400 "" "list with limit abc" GET "/api/0/profiles?$Q&$W&limit=abc"
expect 400 "" "list with service a%00b" GET "/api/0/profiles?service=a%00b&type=cpu&$W"
expect 400 "" "merge with labels novalue" GET "/api/0/profiles/merge?$Q&$W&labels=x"
expect 404 "" "unknown path" GET "/api/0/nothing/here"
expect 405 "" "PUT on profiles" PUT "/api/0/profiles?$Q" --data-binary @"$V"

# ---- the mount -------------------------------------------------------------------------
if mountpoint -q "$MNT"; then
    mkdir -p "$MNT/badfuse/cpu"
    cerr=$(cp "$B/random.bin" "$MNT/badfuse/cpu/x.pb.gz" 2>&1); crc=$?
    check "cp of garbage into the mount fails" [ "$crc" != 0 ]
    assert_contains "cp of garbage: errno" "$cerr" "Invalid argument"
    cerr=$(cp "$B/bomb_4g_isize64.gz" "$MNT/badfuse/cpu/y.pb.gz" 2>&1); crc=$?
    check "cp of a zip bomb into the mount fails" [ "$crc" != 0 ]
    check "nothing stored by failed copies" [ -z "$(ls "$MNT/badfuse/cpu" 2>&1)" ]
    for n in $'a\nb' $'a\x01b' 'merge'; do
        merr=$(mkdir "$MNT/$n" 2>&1); mrc=$?
        check "mkdir of a bad service name fails ($(printf %q "$n"))" [ "$mrc" != 0 ]
    done
    merr=$(mkdir "$MNT/badfuse/cpu/novalue" 2>&1); mrc=$?
    check "mkdir of a bad label directory fails" [ "$mrc" != 0 ]
    check "mount still answers" ls "$MNT/badfuse/cpu" >/dev/null
else
    fail "mount not there"
fi

# ---- still serving ---------------------------------------------------------------------
id=$(ingest "$B/valid.pb.gz" good cpu 'k=v')
if [ ${#id} = 20 ]; then
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "valid profile reads back identical" cmp -s "$T/back" "$B/valid.pb.gz"
    # a NUL must not cut the id short and name the profile after all
    expect 400 "" "existing id followed by %00junk" GET "/api/0/profiles/$id%00junk"
    expect 400 "" "existing id followed by %0A" GET "/api/0/profiles/$id%0A"
else
    fail "valid ingest after the bad inputs failed: [$id]"
fi
http GET "$URL/api/0/services"
assert_eq "services answer" 200 "$HTTP_STATUS"
assert_contains "services list the good one" "$(json 'j["body"]')" "good"
case "$HTTP_BODY" in *'"bad"'*) fail "a rejected profile created service 'bad'" ;; *) ok ;; esac
rss=$(rss_mb)
echo "badinput: server VmRSS at the end: $rss MB"
check "VmRSS at the end ($rss MB) < $RSS_LIMIT_MB MB" [ "$rss" -lt "$RSS_LIMIT_MB" ]
check "server still running" kill -0 "$SERVER_PID"
t_done
