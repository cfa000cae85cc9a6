#!/usr/bin/env bash
# tests/integration/fuse_merge.sh — merge on read: MNT/merge/<svc>/<type>/
# [<labels>/]<from>..<to> gives exactly the bytes of GET /api/0/profiles/merge
# for the same query, to cat, cp, python's open().read(), Go's os.ReadFile
# and `go tool pprof`; stat never merges (size 0 then), fstat of the open
# file gives the size that a read returns; label
# directories filter; an empty match is ENOENT; the listing shows the
# ready-made ranges; a new profile changes the merge; and a slow merge does
# not hold up `ls` in another process.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" --quiet || t_done

# merge_http OUT QUERY: GET the merge for QUERY into OUT, prints the status.
merge_http() {
    curl -s -o "$1" -w '%{http_code}' --max-time 120 "$URL/api/0/profiles/merge?$2"
}

# ---- data: fixtures with their own created_at, and recent ones ---------------------------
for i in 0 1 2 3 4 5 6 7; do
    labels='k=a'; [ $((i % 2)) = 1 ] && labels='k=b'
    ingest "$FIXTURES/cpu_00$i.pb.gz" svc cpu "$labels" >/dev/null
done
ingest "$FIXTURES/heap_005.pb.gz" svc heap >/dev/null
http GET "$URL/api/0/profiles?service=svc&type=cpu&from=0&to=9999999999"
FROM=$(json 'min(m["created_at"] for m in j["body"])')
TO=$(json 'max(m["created_at"] for m in j["body"])')
FROM=$(date -u -d "$FROM" +%s)
TO=$(date -u -d "$TO" +%s)
now=$(date +%s)
for i in 0 1 2; do
    retime "$FIXTURES/cpu_01$i.pb.gz" "$T/recent$i.pb.gz" $((now - 600 - i * 60))
    ingest "$T/recent$i.pb.gz" live cpu >/dev/null
done

# ---- byte-identical to the HTTP merge ----------------------------------------------------
F="$MNT/merge/svc/cpu/$FROM..$TO"
assert_eq "HTTP merge" 200 "$(merge_http "$T/h.pb.gz" "service=svc&type=cpu&from=$FROM&to=$TO")"
cat "$F" > "$T/cat.pb.gz"
check "cat of $FROM..$TO identical to HTTP" cmp "$T/cat.pb.gz" "$T/h.pb.gz"
assert_eq "fstat of the open merge file = bytes read" "$(stat -c %s "$T/h.pb.gz")" \
    "$(python3 -c 'import os,sys; import time; f=open(sys.argv[1],"rb"); time.sleep(1.2); print(os.fstat(f.fileno()).st_size)' "$F")"
# fstat(2) reaches getattr without the file handle: after the store changed
# (here: a heap profile ingested beside the merged cpu ones) the open file still reports the
# size of the bytes it reads, not 0.
retime "$FIXTURES/heap_005.pb.gz" "$T/other.pb.gz" $((now - 300))
assert_eq "fstat of an open merge file after the store changed = bytes read" "$(stat -c %s "$T/h.pb.gz")" \
    "$(python3 -c 'import os,subprocess,sys,time; f=open(sys.argv[1],"rb"); subprocess.run(sys.argv[2:], check=True, stdout=subprocess.DEVNULL); time.sleep(1.2); print(os.fstat(f.fileno()).st_size)' \
       "$F" curl -sf -o /dev/null --data-binary @"$T/other.pb.gz" "$URL/api/0/profiles?service=live&type=heap")"
assert_eq "merge file mode" "444" "$(stat -c '%a' "$F")"
check "cp of the merge file" cp "$F" "$T/cp.pb.gz"
check "cp identical to HTTP" cmp "$T/cp.pb.gz" "$T/h.pb.gz"
python3 -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], "rb").read())' "$F" > "$T/py.pb.gz"
check "python open().read() identical to HTTP" cmp "$T/py.pb.gz" "$T/h.pb.gz"

# profefe's time format and RFC 3339 name the same merge
P1=$(date -u -d @"$FROM" +%Y-%m-%dT%H:%M:%S)
P2=$(date -u -d @"$TO" +%Y-%m-%dT%H:%M:%SZ)
check "profefe/RFC 3339 times: same bytes" cmp "$MNT/merge/svc/cpu/$P1..$P2" "$T/h.pb.gz"

# Go: os.ReadFile stats, then reads; go tool pprof opens the file
mkdir -p "$T/goread"
cat > "$T/goread/main.go" <<'EOF'
package main

import "os"

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.Write(b)
}
EOF
export GOCACHE=$T/gocache GOPATH=$T/gopath GO111MODULE=off GOFLAGS= HOME=$T PPROF_TMPDIR=$T
if (cd "$T/goread" && go build -o "$T/goread/goread" main.go) 2>"$T/gobuild.log"; then
    "$T/goread/goread" "$F" > "$T/go.pb.gz"
    check "Go os.ReadFile identical to HTTP" cmp "$T/go.pb.gz" "$T/h.pb.gz"
else
    fail "go build: $(cat "$T/gobuild.log")"
fi
top=$(go tool pprof -top "$F" 2>&1)
assert_contains "go tool pprof -top on the merge file" "$top" "Type: cpu"
assert_contains "go tool pprof -top shows nodes" "$top" "Showing nodes accounting for"

# relative ranges
assert_eq "HTTP merge now-1h..now" 200 "$(merge_http "$T/hl.pb.gz" "service=live&type=cpu&from=now-1h&to=now")"
check "now-1h..now identical to HTTP" cmp "$MNT/merge/live/cpu/now-1h..now" "$T/hl.pb.gz"
check "now-1h30m..now the same profiles" cmp "$MNT/merge/live/cpu/now-1h30m..now" "$T/hl.pb.gz"
assert_contains "now-1m..now is empty" "$(cat "$MNT/merge/live/cpu/now-1m..now" 2>&1)" "No such file or directory"

# ---- label directories ----------------------------------------------------------------------
assert_eq "HTTP merge k=a" 200 "$(merge_http "$T/ha.pb.gz" "service=svc&type=cpu&from=$FROM&to=$TO&labels=k=a")"
check "k=a merge identical to HTTP" cmp "$MNT/merge/svc/cpu/k=a/$FROM..$TO" "$T/ha.pb.gz"
check "k=a merge differs from all" sh -c "! cmp -s '$T/ha.pb.gz' '$T/h.pb.gz'"
assert_contains "label dir nothing matches" "$(ls "$MNT/merge/svc/cpu/k=zzz" 2>&1)" "No such file or directory"

# ---- empty matches, listings -----------------------------------------------------------------
assert_contains "empty range is ENOENT" "$(cat "$MNT/merge/svc/cpu/1..2" 2>&1)" "No such file or directory"
assert_contains "empty range in a label dir" "$(stat "$MNT/merge/svc/cpu/k=a/1..2" 2>&1)" "No such file or directory"
assert_contains "type without profiles" "$(cat "$MNT/merge/svc/mutex/0..now" 2>&1)" "No such file or directory"
assert_contains "writing a merge file" "$(sh -c "echo x > '$F'" 2>&1)" "Permission denied"
assert_eq "ls merge" "live svc" "$(ls "$MNT/merge" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "ls merge/svc: types but trace" "block cpu goroutine heap mutex other threadcreate wall" \
    "$(ls "$MNT/merge/svc" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "ready-made ranges and their views" "now-1h..now now-1h..now.folded now-1h..now.svg now-1h..now.top now-24h..now now-24h..now.folded now-24h..now.svg now-24h..now.top now-7d..now now-7d..now.folded now-7d..now.svg now-7d..now.top" \
    "$(ls "$MNT/merge/live/cpu" | tr '\n' ' ' | sed 's/ $//')"
listing=$(ls "$MNT/merge/svc/cpu")
assert_contains "label dir k=a in the merge listing" "$listing" "k=a"
assert_contains "label dir k=b in the merge listing" "$listing" "k=b"
assert_eq "ls -l of the ready-made ranges: read-only files" "$(printf -- '-r--r--r-- %.0s' $(seq 12) | sed 's/ $//')" \
    "$(ls -l "$MNT/merge/live/cpu" | awk 'NR > 1 { print $1 }' | tr '\n' ' ' | sed 's/ $//')"

# ---- a new profile changes the merge ---------------------------------------------------------
retime "$FIXTURES/cpu_013.pb.gz" "$T/more.pb.gz" $((FROM + 1))
ingest "$T/more.pb.gz" svc cpu 'k=a' >/dev/null
merge_http "$T/h2.pb.gz" "service=svc&type=cpu&from=$FROM&to=$TO" >/dev/null
check "the HTTP merge changed" sh -c "! cmp -s '$T/h2.pb.gz' '$T/h.pb.gz'"
check "the merge file follows at once" cmp "$F" "$T/h2.pb.gz"

# ---- a slow merge does not block the rest of the mount ----------------------------------------
python3 - "$T/big.pb.gz" <<'EOF'
# One CPU profile with 50,000 samples over random 10-deep stacks of 3,000
# functions: merging 60 of them takes a while, whatever the machine.
import gzip, random, sys

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)

def fv(num, v): return varint(num << 3) + varint(v)
def fb(num, b): return varint((num << 3) | 2) + varint(len(b)) + b
def packed(num, vals): return fb(num, b"".join(varint(v) for v in vals))

rnd = random.Random(1)
strings = ["", "samples", "count", "cpu", "nanoseconds", "main.go"]
out = [fb(1, fv(1, 1) + fv(2, 2)), fb(1, fv(1, 3) + fv(2, 4))]
for i in range(1, 3001):
    strings.append("pkg.func%d" % i)
    out.append(fb(5, fv(1, i) + fv(2, len(strings) - 1) + fv(4, 5)))
    out.append(fb(4, fv(1, i) + fv(3, 0x1000 + i) + fb(4, fv(1, i) + fv(2, i))))
for _ in range(50000):
    stack = [rnd.randint(1, 3000) for _ in range(10)]
    out.append(fb(2, packed(1, stack) + packed(2, [1, 10000000])))
out += [fb(6, s.encode()) for s in strings]
out += [fv(9, 1700000000 * 10**9), fb(11, fv(1, 3) + fv(2, 4)), fv(12, 10000000)]
open(sys.argv[1], "wb").write(gzip.compress(b"".join(out), 1))
EOF
# One label per copy: ingest is idempotent, so 60 identical uploads with the
# same labels would be one profile.
seq 1 60 |
    xargs -P 2 -I{} curl -s -o /dev/null --max-time 120 --data-binary @"$T/big.pb.gz" "$URL/api/0/profiles?service=slow&type=cpu&labels=copy={}"
http GET "$URL/api/0/profiles?service=slow&type=cpu&from=0&to=9999999999"
assert_eq "big profiles stored" 60 "$(json 'len(j["body"])')"

t0=$(date +%s%N)
cat "$MNT/merge/slow/cpu/0..$now" > "$T/slow.pb.gz" & catpid=$!
sleep 0.1
t1=$(date +%s%N)
ls "$MNT" >/dev/null && ls "$MNT/svc/cpu" >/dev/null && stat "$MNT/live/cpu" >/dev/null &&
    cat "$MNT/merge/live/cpu/now-1h..now" >/dev/null
t2=$(date +%s%N)
kill -0 "$catpid" 2>/dev/null && running=1 || running=0
wait "$catpid"
t3=$(date +%s%N)
ls_ms=$(( (t2 - t1) / 1000000 )); merge_ms=$(( (t3 - t0) / 1000000 ))
echo "fuse_merge: slow merge ${merge_ms} ms; ls/stat/cat meanwhile ${ls_ms} ms"
assert_eq "the slow merge was still running when ls returned" 1 "$running"
check "ls during a slow merge took ${ls_ms} ms (< 1000)" [ "$ls_ms" -lt 1000 ]
merge_http "$T/hs.pb.gz" "service=slow&type=cpu&from=0&to=$now" >/dev/null
check "the slow merge identical to HTTP" cmp "$T/slow.pb.gz" "$T/hs.pb.gz"

stop_server
check "unmounted after SIGTERM" sh -c "! mountpoint -q '$MNT'"
t_done
