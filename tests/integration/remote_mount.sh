#!/usr/bin/env bash
# remote_mount.sh — `profefs mount DIR --remote URL` against a real
# `profefs serve` (which also mounts the same store locally): the layout,
# sizes and bytes of stored files, writes through the remote mount seen over
# HTTP and through the local mount, label directories, merges byte-identical
# to the HTTP merge, rm, bad profiles, a read-only remote mount, and what a
# dead or hung server looks like (EIO within the --timeout, never a hang);
# merges show writes through the mount at once and other clients' within
# the 5 s the README promises (issue 13);
# finally a clean unmount on SIGTERM.
. "$TESTS_DIR/lib.sh"
t_init

LMNT="$T/lmnt"
RMNT="$T/rmnt"
start_server --mount "$LMNT" || t_done

NOW=$(date -u +%s)
# fixture copies with known created_at (inside the remote mount's 24h window)
retime "$FIXTURES/cpu_000.pb.gz" "$T/c1.pb.gz" $((NOW - 600))
retime "$FIXTURES/cpu_001.pb.gz" "$T/c2.pb.gz" $((NOW - 500))
retime "$FIXTURES/cpu_002.pb.gz" "$T/c3.pb.gz" $((NOW - 400))
retime "$FIXTURES/cpu_003.pb.gz" "$T/c4.pb.gz" $((NOW - 300))
retime "$FIXTURES/heap_000.pb.gz" "$T/h1.pb.gz" $((NOW - 200))
stamp() { date -u -d "@$1" +%Y%m%dT%H%M%SZ; }

ID1=$(ingest "$T/c1.pb.gz" webapp cpu env=prod)
ID2=$(ingest "$T/c2.pb.gz" webapp cpu)
ID3=$(ingest "$T/h1.pb.gz" webapp heap)
check "seeded over HTTP" test -n "$ID1" -a -n "$ID2" -a -n "$ID3"

# start_remote DIR [ARGS...]: mounts $URL at DIR in the background; RPID.
RN=0
start_remote() {
    local dir=$1; shift
    RN=$((RN + 1))
    mkdir -p "$dir"
    T_MOUNTS+=("$dir")
    "$PROFEFS" mount "$dir" --remote "$URL" --timeout 2s "$@" 2>"$T/remote.$RN.log" &
    RPID=$!
    T_PIDS+=("$RPID")
    T_LOGS+=("$T/remote.$RN.log")
    wait_mount "$dir" 10 || { fail "remote mount $dir did not appear"; cat "$T/remote.$RN.log" >&2; return 1; }
}

# ---- mounting a URL with nothing behind it fails at once ----------------------
dead=$(free_port)
mkdir -p "$T/never"
t0=$(date +%s%N)
"$PROFEFS" mount "$T/never" --remote "http://127.0.0.1:$dead" --timeout 2s 2>"$T/never.log"
rc=$?
assert_eq "mount of a dead URL: exit status" 1 "$rc"
check "mount of a dead URL fails within 5 s" test $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000
assert_contains "mount of a dead URL: message" "$(cat "$T/never.log")" "cannot reach http://127.0.0.1:$dead"
check "mount of a dead URL: nothing mounted" bash -c "! mountpoint -q '$T/never'"
"$PROFEFS" mount --help >"$T/help" 2>&1
assert_eq "mount --help exit status" 0 "$?"
assert_contains "mount --help" "$(cat "$T/help")" "Usage: profefs mount DIR --remote URL"

start_remote "$RMNT" || t_done
MOUNT_PID=$RPID

# ---- layout -------------------------------------------------------------------
assert_eq "root lists services, merge and diff" "diff merge webapp" "$(ls "$RMNT" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "service lists the types that hold profiles" "cpu heap" \
    "$(ls "$RMNT/webapp" | sort | tr '\n' ' ' | sed 's/ $//')"
F1="$(stamp $((NOW - 600)))_$ID1.pb.gz"
F2="$(stamp $((NOW - 500)))_$ID2.pb.gz"
F3="$(stamp $((NOW - 200)))_$ID3.pb.gz"
rls=$(ls "$RMNT/webapp/cpu" | grep '\.pb\.gz$' | tr '\n' ' ')
assert_eq "cpu dir lists the unlabelled profile" "$F2 " "$rls"
assert_eq "remote listing = local listing" "$(ls "$LMNT/webapp/cpu" | tr '\n' ' ')" "$(ls "$RMNT/webapp/cpu" | tr '\n' ' ')"
assert_eq "heap dir" "$F3" "$(ls "$RMNT/webapp/heap" | grep '\.pb\.gz$')"
assert_eq "stat size is exact" "$(stat -c %s "$T/c1.pb.gz")" "$(stat -c %s "$RMNT/webapp/cpu/env=prod/$F1")"
assert_eq "stat mtime is created_at" $((NOW - 600)) "$(stat -c %Y "$RMNT/webapp/cpu/env=prod/$F1")"
check "cat through the remote mount = fixture bytes" cmp -s "$T/c1.pb.gz" "$RMNT/webapp/cpu/env=prod/$F1"
check "cat of heap = fixture bytes" cmp -s "$T/h1.pb.gz" "$RMNT/webapp/heap/$F3"
check "label directory listed" test -d "$RMNT/webapp/cpu/env=prod"
assert_eq "label directory filters" "$F1" "$(ls "$RMNT/webapp/cpu/env=prod" | grep '\.pb\.gz$')"
check "go tool pprof opens a remote file" bash -c "HOME='$T' go tool pprof -raw '$RMNT/webapp/cpu/env=prod/$F1' >/dev/null 2>&1"

# ---- writes ---------------------------------------------------------------------
cp "$T/c3.pb.gz" "$RMNT/webapp/cpu/new.pb.gz"
assert_eq "cp into the remote mount succeeds" 0 "$?"
http GET "$URL/api/0/profiles?service=webapp&type=cpu&from=$((NOW - 3600))&to=$((NOW + 60))"
assert_eq "HTTP list after cp: 3 cpu profiles" 3 "$(json 'len(j["body"])')"
ID4=$(json '[p["id"] for p in j["body"] if p["id"] not in ("'"$ID1"'","'"$ID2"'")][0]')
curl -s -o "$T/got4" "$URL/api/0/profiles/$ID4"
check "profile written through the remote mount: same bytes over HTTP" cmp -s "$T/c3.pb.gz" "$T/got4"
F4="$(stamp $((NOW - 400)))_$ID4.pb.gz"
check "shows in the remote mount under its canonical name" test -f "$RMNT/webapp/cpu/$F4"
check "shows in the local mount with identical bytes" cmp -s "$T/c3.pb.gz" "$LMNT/webapp/cpu/$F4"

cp "$T/c4.pb.gz" "$RMNT/webapp/cpu/env=prod/x.pb.gz"
assert_eq "cp into a label directory succeeds" 0 "$?"
http GET "$URL/api/0/profiles?service=webapp&type=cpu&labels=env=prod&from=$((NOW - 3600))&to=$((NOW + 60))"
assert_eq "label directory labels the new profile" 2 "$(json 'len(j["body"])')"

printf 'not a profile' >"$T/bad.pb.gz"
cp "$T/bad.pb.gz" "$RMNT/webapp/cpu/bad.pb.gz" 2>"$T/cp.err"
check "cp of a bad profile fails" test $? -ne 0
assert_contains "cp of a bad profile: EINVAL" "$(cat "$T/cp.err")" "Invalid argument"
http GET "$URL/api/0/profiles?service=webapp&type=cpu&from=$((NOW - 3600))&to=$((NOW + 60))"
assert_eq "bad profile not stored" 4 "$(json 'len(j["body"])')"

mkdir "$RMNT/newsvc"
assert_eq "mkdir of a service" 0 "$?"
check "new service listed" bash -c "ls '$RMNT' | grep -qx newsvc"
check "mkdir of a type dir in it" mkdir "$RMNT/newsvc/cpu"
check "new service has the type made" test -d "$RMNT/newsvc/cpu"

# ---- merges -----------------------------------------------------------------------
FROM=$((NOW - 3600)); TO=$((NOW + 60))
cat "$RMNT/merge/webapp/cpu/$FROM..$TO" >"$T/rmerge"
assert_eq "cat of a remote merge succeeds" 0 "$?"
curl -s -o "$T/hmerge" "$URL/api/0/profiles/merge?service=webapp&type=cpu&from=$FROM&to=$TO"
check "remote merge = HTTP merge, byte for byte" cmp -s "$T/rmerge" "$T/hmerge"
cat "$LMNT/merge/webapp/cpu/$FROM..$TO" >"$T/lmerge"
check "remote merge = local mount merge" cmp -s "$T/rmerge" "$T/lmerge"
assert_eq "open merge file's size = bytes read" "$(stat -c %s "$T/hmerge")" \
    "$(python3 -c 'import os,sys; import time; f=open(sys.argv[1],"rb"); time.sleep(1.2); print(os.fstat(f.fileno()).st_size)' "$RMNT/merge/webapp/cpu/$FROM..$TO")"
check "go tool pprof opens the remote merge" bash -c "HOME='$T' go tool pprof -raw '$T/rmerge' >/dev/null 2>&1"
cat "$RMNT/merge/webapp/cpu/env=prod/$FROM..$TO" >"$T/rmerge2"
curl -s -o "$T/hmerge2" "$URL/api/0/profiles/merge?service=webapp&type=cpu&labels=env=prod&from=$FROM&to=$TO"
check "labelled remote merge = HTTP merge" cmp -s "$T/rmerge2" "$T/hmerge2"
cat "$RMNT/merge/webapp/cpu/$((NOW - 7200))..$((NOW - 7100))" >/dev/null 2>"$T/empty.err"
check "merge of an empty range fails" test $? -ne 0
assert_contains "merge of an empty range: ENOENT" "$(cat "$T/empty.err")" "No such file"

# ---- rm ----------------------------------------------------------------------------
rm "$RMNT/webapp/cpu/$F2"
assert_eq "rm through the remote mount" 0 "$?"
http GET "$URL/api/0/profiles/$ID2"
assert_eq "removed profile is gone over HTTP" 404 "$HTTP_STATUS"
check "removed profile is gone from the listing" bash -c "! ls '$RMNT/webapp/cpu' | grep -q '$ID2'"

# ---- concurrent readers (curl handle pool, caches shared by FUSE threads) --------------------
reader() {
    local i f bad=0
    for ((i = 0; i < 15; i++)); do
        for f in "$RMNT"/webapp/cpu/*.pb.gz "$RMNT"/webapp/cpu/env=prod/*.pb.gz "$RMNT"/webapp/heap/*.pb.gz; do
            id=${f##*_}; id=${id%.pb.gz}
            cmp -s "$f" "$T/byid/$id" || bad=$((bad + 1))
        done
        # cat: cmp -s stops at a size difference, and stat never merges
        cat "$RMNT/merge/webapp/cpu/$FROM..$TO" | cmp -s - "$T/hmerge3" || bad=$((bad + 1))
    done
    echo "$bad" >"$T/reader.$1"
}
mkdir -p "$T/byid"
for id in $ID1 $ID3 $ID4 $(ls "$RMNT/webapp/cpu/env=prod" | sed -n 's/.*_\(.*\)\.pb\.gz$/\1/p'); do
    curl -s -o "$T/byid/$id" "$URL/api/0/profiles/$id"
done
curl -s -o "$T/hmerge3" "$URL/api/0/profiles/merge?service=webapp&type=cpu&from=$FROM&to=$TO"
rpids=()
for r in 1 2 3 4; do reader $r & rpids+=($!); done
wait "${rpids[@]}"
assert_eq "4 concurrent readers x 15 rounds: every read identical" "0 0 0 0" "$(cat "$T"/reader.[1-4] | tr '\n' ' ' | sed 's/ $//')"

# ---- freshness of merges (README: own writes at once, others' within 5 s) ----------------
M="$RMNT/merge/webapp/cpu/$FROM..$TO"
cat "$M" >/dev/null
retime "$FIXTURES/cpu_005.pb.gz" "$T/c6.pb.gz" $((NOW - 100))
ingest "$T/c6.pb.gz" webapp cpu >/dev/null       # another client, straight to the server
t0=$(date +%s%N)
while :; do
    curl -s -o "$T/hm_other" "$URL/api/0/profiles/merge?service=webapp&type=cpu&from=$FROM&to=$TO"
    cat "$M" | cmp -s - "$T/hm_other" && break
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 7000 ] && break
    sleep 0.2
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "remote_mount: another client's ingest showed in the remote merge after ${ms} ms"
check "another client's write shows in the merge within 5 s (+2 s margin): ${ms} ms" [ "$ms" -le 7000 ]
retime "$FIXTURES/cpu_006.pb.gz" "$T/c7.pb.gz" $((NOW - 90))
cp "$T/c7.pb.gz" "$RMNT/webapp/cpu/own.pb.gz"
curl -s -o "$T/hm_own" "$URL/api/0/profiles/merge?service=webapp&type=cpu&from=$FROM&to=$TO"
check "a write through the mount shows in its merge at once" sh -c "cat '$M' | cmp -s - '$T/hm_own'"

# ---- a read-only remote mount ----------------------------------------------------------
start_remote "$T/romnt" --read-only || t_done
RO_PID=$RPID
check "read-only mount reads" cmp -s "$T/c1.pb.gz" "$T/romnt/webapp/cpu/env=prod/$F1"
cp "$T/c3.pb.gz" "$T/romnt/webapp/cpu/y.pb.gz" 2>"$T/ro.err"
check "read-only mount refuses writes" test $? -ne 0
assert_contains "read-only: EROFS" "$(cat "$T/ro.err")" "Read-only file system"
kill -TERM "$RO_PID"; wait "$RO_PID"
assert_eq "read-only mount exits 0 on SIGTERM" 0 "$?"
check "read-only mount unmounted" bash -c "! mountpoint -q '$T/romnt'"

# ---- a hung server: EIO after the timeout --------------------------------------------------
kill -STOP "$SERVER_PID"
t0=$(date +%s%N)
cat "$RMNT/merge/webapp/cpu/$((NOW - 3000))..$((NOW + 30))" >/dev/null 2>"$T/hung.err"
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$SERVER_PID"
check "read while the server hangs fails" test "$rc" -ne 0
assert_contains "read while the server hangs: EIO" "$(cat "$T/hung.err")" "Input/output error"
check "hung server: failed after the 2 s timeout, not before ($ms ms)" test "$ms" -ge 1900
check "hung server: failed within 10 s ($ms ms)" test "$ms" -lt 10000
assert_contains "the remote mount logs the network error" "$(cat "$T/remote.1.log")" "remote: GET"

# ---- a dead server: EIO at once ------------------------------------------------------------
stop_server
t0=$(date +%s%N)
cat "$RMNT/merge/webapp/cpu/$((NOW - 2900))..$((NOW + 31))" >/dev/null 2>"$T/dead.err"
rc=$?
check "read after the server stopped fails" test "$rc" -ne 0
assert_contains "read after the server stopped: EIO" "$(cat "$T/dead.err")" "Input/output error"
sleep 6   # past the generation bucket: listings are asked again
ls "$RMNT/webapp/cpu" >/dev/null 2>"$T/deadls.err"
check "ls after the server stopped fails" test $? -ne 0
assert_contains "ls after the server stopped: EIO" "$(cat "$T/deadls.err")" "Input/output error"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "dead server: errors within 10 s, sleep included ($ms ms)" test "$ms" -lt 10000

# ---- clean unmount ---------------------------------------------------------------------------
kill -TERM "$MOUNT_PID"
wait "$MOUNT_PID"
assert_eq "remote mount exits 0 on SIGTERM" 0 "$?"
check "no stale mount left" bash -c "! mountpoint -q '$RMNT'"
check "mount point usable again" bash -c "ls '$RMNT' >/dev/null"
t_done
