#!/usr/bin/env bash
# s3_local.sh — what an S3-backed node keeps on its own, on a real S3 server
# (Ceph radosgw started here by tests/tools/rgw.sh):
#   - `serve --cache DIR --cache-size SIZE`: merges read cached objects (hit
#     and miss counters in /debug/metrics; an object changed behind the
#     cache's back still merges as cached), a deleted key is never served
#     from it, a corrupt or truncated cache file is detected and fetched
#     again, the size bound holds, the files survive a restart, one node per
#     DIR (a second is refused), usage errors;
#   - mkdir of an empty service on an S3-backed mount: there at once (on
#     that node, in memory) until a profile arrives, rmdir, ENOTEMPTY; at
#     most 1024 of them (ENOSPC beyond);
#   - `profefs scrape --once` of a real Go program with --data s3://BUCKET
#     and with --to an S3-backed node.
. "$TESTS_DIR/lib.sh"
t_init
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"

s3_start
# cfile KEY: the cache file of KEY (FNV-1a 64 of the cache's scope, the
# bucket's URL and prefix, then the key; 16 hex digits)
cfile() { python3 -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode(): h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print("%016x" % h)' "$EP/$B/$1"; }
metric() { curl -s "$1/debug/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
ids_of() { json "' '.join(p['id'] for p in j['body'])"; }

# ---- usage --------------------------------------------------------------------------------
"$PROFEFS" serve --help >"$T/help"
assert_contains "serve --help documents --cache" "$(cat "$T/help")" "--cache DIR"
assert_contains "serve --help documents --cache-size" "$(cat "$T/help")" "--cache-size SIZE"
out=$("$PROFEFS" serve --data "$T/local" --cache "$T/c0" --addr 127.0.0.1:0 2>&1); rc=$?
assert_eq "--cache on a local store: usage error" 2 "$rc"
assert_contains "--cache on a local store: the reason" "$out" "--cache and --cache-size need --data s3://BUCKET"
out=$("$PROFEFS" serve --data "$DATA" --cache "$T/c0" --cache-size 0 --addr 127.0.0.1:0 2>&1); rc=$?
assert_eq "--cache-size 0: usage error" 2 "$rc"

# ---- a node without cache (A) and one with (C) --------------------------------------------
start_server || t_done
A=$URL; APID=$SERVER_PID
CACHE="$T/cache"
start_server --cache "$CACHE" --cache-size 64K || t_done
C=$URL; CPID=$SERVER_PID; CLOG=$SERVER_LOG
out=$("$PROFEFS" serve --data "$DATA" --cache "$CACHE" --addr 127.0.0.1:0 2>&1); rc=$?
check "a second node on the cache directory is refused" test "$rc" -ne 0
assert_contains "refused: names the holder" "$out" "cache directory $CACHE is in use by process $CPID"
assert_eq "metrics: hits at start" 0 "$(metric "$C" profefs_store_cache_hits_total)"
assert_eq "metrics: no cache rows without --cache" "" "$(metric "$A" profefs_store_cache_hits_total)"

T0=1795556966
IDS=()
for k in 0 1 2 3 4; do IDS+=("$(URL=$A ingest "$FIXTURES/cpu_00$k.pb.gz" web cpu "i=$k")"); done
check "5 ingested on A" test -n "${IDS[4]}"
FROM=$(utc $T0); TO=$(utc $((T0 + 4)))
Q="service=web&type=cpu&from=$FROM&to=$TO"
go tool pprof -proto "$FIXTURES"/cpu_00[0-4].pb.gz >"$T/want.pb.gz" 2>>"$T/pprof.err"

curl -s -o "$T/m1.pb.gz" "$C/api/0/profiles/merge?$Q"
same_profile "first merge on C" "$T/want.pb.gz" "$T/m1.pb.gz"
assert_eq "first merge: 5 misses" 5 "$(metric "$C" profefs_store_cache_misses_total)"
assert_eq "first merge: 0 hits" 0 "$(metric "$C" profefs_store_cache_hits_total)"
assert_eq "first merge: 5 files cached" 5 "$(find "$CACHE" -type f ! -name profefs.lock | wc -l)"
curl -s -o "$T/m2.pb.gz" "$C/api/0/profiles/merge?$Q"
check "second merge: the same bytes" cmp -s "$T/m1.pb.gz" "$T/m2.pb.gz"
assert_eq "second merge: 5 hits" 5 "$(metric "$C" profefs_store_cache_hits_total)"
assert_eq "second merge: no new miss" 5 "$(metric "$C" profefs_store_cache_misses_total)"

# the cache is what C reads: an object rewritten behind its back (never
# done by profefs: objects do not change) still merges as cached on C
code=$(s3curl PUT "/${IDS[1]}" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "object rewritten in S3" 200 "$code"
curl -s -o "$T/m3.pb.gz" "$C/api/0/profiles/merge?$Q"
check "C merges the cached object" cmp -s "$T/m1.pb.gz" "$T/m3.pb.gz"
curl -s -o "$T/a3.pb.gz" "$A/api/0/profiles/merge?$Q"
check "A (no cache) merges the new one" test "$(cmp -s "$T/m1.pb.gz" "$T/a3.pb.gz"; echo $?)" != 0

# a corrupt and a truncated cache file: detected, fetched again, not served
F0="$CACHE/$(cfile "${IDS[0]}")"; F2="$CACHE/$(cfile "${IDS[2]}")"
check "cache files are named by key" test -f "$F0" -a -f "$F2"
size0=$(stat -c %s "$F0")
python3 - "$F0" <<'PY'
import sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read()); d[-10] ^= 0xff; open(p, "wb").write(d)
PY
truncate -s -100 "$F2"
hits=$(metric "$C" profefs_store_cache_hits_total); miss=$(metric "$C" profefs_store_cache_misses_total)
curl -s -o "$T/m4.pb.gz" "$C/api/0/profiles/merge?$Q"
check "merge with a corrupt cache file: the same bytes" cmp -s "$T/m1.pb.gz" "$T/m4.pb.gz"
assert_eq "corrupt and truncated: 2 misses" $((miss + 2)) "$(metric "$C" profefs_store_cache_misses_total)"
assert_eq "the other 3: hits" $((hits + 3)) "$(metric "$C" profefs_store_cache_hits_total)"
assert_contains "the corrupt file is logged" "$(cat "$CLOG")" "CRC mismatch, fetching it again"
assert_contains "the truncated file is logged" "$(cat "$CLOG")" "wrong size, fetching it again"
assert_eq "the corrupt file is written again whole" "$size0" "$(stat -c %s "$F0")"
curl -s -o "$T/m5.pb.gz" "$C/api/0/profiles/merge?$Q"
assert_eq "then all 5 hit again" $((hits + 8)) "$(metric "$C" profefs_store_cache_hits_total)"

# a key deleted (on A) is never served from C's cache
http DELETE "$A/api/0/profiles/$(esc "${IDS[3]}")"
assert_eq "A deletes a profile C has cached" 200 "$HTTP_STATUS"
check "its file is still in C's cache" test -f "$CACHE/$(cfile "${IDS[3]}")"
http GET "$C/api/0/profiles/$(esc "${IDS[3]}")"
assert_eq "C: GET of the deleted key is 404" 404 "$HTTP_STATUS"
http GET "$C/api/0/profiles?$Q"
assert_eq "C lists 4" 4 "$(json 'len(j["body"])')"
curl -s -o "$T/m6.pb.gz" "$C/api/0/profiles/merge?$Q"
go tool pprof -proto "$FIXTURES/cpu_000.pb.gz" "$FIXTURES/cpu_001.pb.gz" "$FIXTURES/cpu_002.pb.gz" \
    "$FIXTURES/cpu_004.pb.gz" >"$T/want4.pb.gz" 2>>"$T/pprof.err"
same_profile "C's merge leaves the deleted key out" "$T/want4.pb.gz" "$T/m6.pb.gz"
# a GET of a cached key that exists: from the cache, after a HEAD
hits=$(metric "$C" profefs_store_cache_hits_total)
curl -s -o "$T/g0" "$C/api/0/profiles/$(esc "${IDS[0]}")"
check "C: GET of a cached key" cmp -s "$T/g0" "$FIXTURES/cpu_000.pb.gz"
assert_eq "C: that GET was a hit" $((hits + 1)) "$(metric "$C" profefs_store_cache_hits_total)"
# the rewritten object: its HEAD's length is not the cached file's, so a
# GET answers S3's object
curl -s -o "$T/g1" "$C/api/0/profiles/$(esc "${IDS[1]}")"
check "C: a GET checks the cached length against S3's" cmp -s "$T/g1" "$FIXTURES/cpu_009.pb.gz"

# the bound: 30 more profiles (about 4 KB each) through a 64K cache
for k in $(seq 10 39); do
    printf -v f "%s/cpu_%03d.pb.gz" "$FIXTURES" $((k % 15))
    retime "$f" "$T/b$k.pb.gz" $((T0 + 100 + k))
    URL=$A ingest "$T/b$k.pb.gz" big cpu >/dev/null
done
curl -s -o "$T/big.pb.gz" "$C/api/0/profiles/merge?service=big&type=cpu&from=$(utc $T0)&to=$(utc $((T0 + 200)))"
check "merge of 30 through the small cache" test -s "$T/big.pb.gz"
total=$(find "$CACHE" -type f ! -name profefs.lock -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
check "cache files take at most 64K ($total bytes)" test "$total" -le 65536
check "cache files hold more than half of it ($total bytes)" test "$total" -gt 32768
assert_eq "metrics: cache bytes = the files' sizes" "$total" "$(metric "$C" profefs_store_cache_bytes)"

# a restart keeps the files: a merge of the last 5 (the most recent) hits
BQ="service=big&type=cpu&from=$(utc $((T0 + 135)))&to=$(utc $((T0 + 139)))"
curl -s -o "$T/last5.pb.gz" "$C/api/0/profiles/merge?$BQ"
kill -TERM "$CPID"; wait "$CPID"; assert_eq "C exits 0" 0 "$?"
start_server --cache "$CACHE" --cache-size 64K || t_done
C=$URL; CPID=$SERVER_PID
assert_eq "after restart: bytes of the files found" "$total" "$(metric "$C" profefs_store_cache_bytes)"
curl -s -o "$T/last5b.pb.gz" "$C/api/0/profiles/merge?$BQ"
check "after restart: the same merge" cmp -s "$T/last5.pb.gz" "$T/last5b.pb.gz"
assert_eq "after restart: 5 hits from the kept files" 5 "$(metric "$C" profefs_store_cache_hits_total)"
assert_eq "after restart: no miss" 0 "$(metric "$C" profefs_store_cache_misses_total)"

# the same directory for another prefix: same relative key, other object
curl -s -o /dev/null "$C/api/0/profiles/$(esc "${IDS[0]}")"
check "C has ${IDS[0]} cached" test -f "$CACHE/$(cfile "${IDS[0]}")"
kill -TERM "$CPID"; wait "$CPID"; assert_eq "C exits 0 again" 0 "$?"
code=$(s3curl PUT "/other/${IDS[0]}" -o /dev/null -w '%{http_code}' --data-binary @"$FIXTURES/cpu_009.pb.gz")
assert_eq "the same key under prefix other/" 200 "$code"
DATA="s3://$B/other" start_server --cache "$CACHE" --cache-size 64K || t_done
C=$URL; CPID=$SERVER_PID
curl -s -o "$T/o0" "$C/api/0/profiles/$(esc "${IDS[0]}")"
check "a cache reused for another prefix serves that prefix's object" cmp -s "$T/o0" "$FIXTURES/cpu_009.pb.gz"
assert_eq "(a miss, not the other scope's file)" 0 "$(metric "$C" profefs_store_cache_hits_total)"

# ---- mkdir on an S3-backed mount ------------------------------------------------------------
MNT="$T/mnt"
start_server --mount "$MNT" || t_done
M=$URL; MPID=$SERVER_PID
mkdir "$MNT/fresh"; rc=$?
assert_eq "mkdir of an empty service" 0 "$rc"
check "it is a directory" test -d "$MNT/fresh"
check "ls shows it" grep -qx fresh <(ls "$MNT")
http GET "$M/api/0/services"
assert_contains "this node's services list it" "$HTTP_BODY" '"fresh"'
http GET "$A/api/0/services"
check "another node does not (no profile in S3 yet)" test "$(json '"fresh" in j["body"]')" = False
mkdir -p "$MNT/fresh/cpu/env=x"; rc=$?
assert_eq "mkdir -p of its type and label directory" 0 "$rc"
check "the label directory is there" test -d "$MNT/fresh/cpu/env=x"
retime "$FIXTURES/cpu_007.pb.gz" "$T/f.pb.gz" $((T0 + 500))
cp "$T/f.pb.gz" "$MNT/fresh/cpu/env=x/"; rc=$?
assert_eq "cp into it" 0 "$rc"
http GET "$A/api/0/profiles?service=fresh&type=cpu&from=$(utc $((T0 + 500)))&to=$(utc $((T0 + 500)))&labels=env=x"
assert_eq "another node lists the profile with the directory's labels" 1 "$(json 'len(j["body"])')"
http GET "$A/api/0/services"
check "and now the service" test "$(json '"fresh" in j["body"]')" = True
rmdir "$MNT/fresh" 2>"$T/rmdir.err"; rc=$?
check "rmdir of a service with a profile fails" test "$rc" -ne 0
assert_contains "with ENOTEMPTY" "$(cat "$T/rmdir.err")" "not empty"
mkdir "$MNT/gone" && rmdir "$MNT/gone"; rc=$?
assert_eq "mkdir then rmdir of an empty service" 0 "$rc"
check "it is gone" test ! -e "$MNT/gone"
# the services made empty live in the node's memory: at most 1024 of them
# (the old code took any number)
t0=$(date +%s)
made=$(python3 - "$MNT" <<'PY'
import errno, os, sys
n = 0
for i in range(1030):
    try:
        os.mkdir(os.path.join(sys.argv[1], "e%04d" % i))
        n += 1
    except OSError as e:
        print(n, errno.errorcode.get(e.errno, e.errno))
        break
else:
    print(n, "none")
PY
)
echo "s3_local: 1030 mkdirs of services in $(( $(date +%s) - t0 )) s: $made"
# (with "fresh", made above, that makes 1024)
assert_eq "1023 more empty services made, the next one ENOSPC" "1023 ENOSPC" "$made"
grep -q "at most 1024 empty services" "$SERVER_LOG"
assert_eq "the refusal is logged with its reason" 0 "$?"
kill -TERM "$MPID"; wait "$MPID"; assert_eq "the mounting node exits 0" 0 "$?"

# ---- scrape --data s3:// -------------------------------------------------------------------
export GOPATH="$T/gopath" GOPROXY=off GOFLAGS=-mod=mod
(cd "$TESTS_DIR/goapp" && go build -o "$T/goapp" .) 2>"$T/gobuild.log"
if [ -x "$T/goapp" ]; then
    gport=$(free_port)
    "$T/goapp" -addr "127.0.0.1:$gport" 2>>"$T/goapp.log" &
    T_PIDS+=("$!")
    wait_http "http://127.0.0.1:$gport/debug/pprof/" 10 || fail "goapp did not start"
    "$PROFEFS" scrape --target "http://127.0.0.1:$gport" --service scraped --labels env=s3 \
        --types heap,goroutine --once --data "$DATA" 2>"$T/scrape.log"
    assert_eq "scrape --once --data s3:// exit status" 0 "$?"
    check "scrape logged two ok lines" test "$(grep -c ' ok ' "$T/scrape.log")" -eq 2
    NOW=$(date -u +%s)
    for ty in heap goroutine; do
        http GET "$A/api/0/profiles?service=scraped&type=$ty&from=$((NOW - 600))&to=$((NOW + 60))&labels=env=s3"
        assert_eq "scraped $ty listed on a node" 1 "$(json 'len(j["body"])')"
        id=$(json 'j["body"][0]["id"]')
        assert_contains "scraped $ty: its id is an S3 key" "$id" "P0.scraped/"
    done
    # through a node: the answer's id is an S3 key, which the client takes
    "$PROFEFS" scrape --target "http://127.0.0.1:$gport" --service scraped2 \
        --types goroutine --once --to "$A" 2>"$T/scrape2.log"
    assert_eq "scrape --once --to an S3-backed node: exit status" 0 "$?"
    http GET "$A/api/0/profiles?service=scraped2&type=goroutine&from=$((NOW - 600))&to=$((NOW + 60))"
    assert_eq "scraped through the node: listed once" 1 "$(json 'len(j["body"])')"
    curl -s -o "$T/sg.pb.gz" "$A/api/0/profiles/merge?service=scraped&type=goroutine&from=$((NOW - 600))&to=$((NOW + 60))"
    check "the scraped goroutine profile opens in go tool pprof" \
        sh -c "go tool pprof -top '$T/sg.pb.gz' >/dev/null 2>&1"
else
    fail "go build of tests/goapp: $(tail -3 "$T/gobuild.log")"
fi

SERVER_PID=$APID; stop_server
SERVER_PID=$CPID
t_done
