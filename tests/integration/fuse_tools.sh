#!/usr/bin/env bash
# tests/integration/fuse_tools.sh — the mount behaves like an ordinary
# filesystem to everyday tools (issue 12): writing one name again and again
# (shell, Python), label directories in any key order (stored and merge
# trees), every profile at exactly one path (find, du), round trips that
# recreate a tree exactly (cp -r, tar, rsync -a twice), cp -p, install -m,
# shutil.copy2, an editor's write-then-rename, chmod/utime of stored files,
# a file written by two processes in turn (never a prefix stored), fsync
# durable across kill -9, refusals logged with their reasons and the right
# errno, rm -r of a service and rmdir of empty directories, recovery of
# the mount point a killed server left, refusal of a live one, and df.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" || t_done

TYPES="cpu heap block mutex goroutine threadcreate other trace"
# count SERVICE [TYPE [LABELS]]: profiles the HTTP list has (every type
# when TYPE is empty).
count() {
    local t n=0 c
    for t in ${2:-$TYPES}; do
        http GET "$URL/api/0/profiles?service=$1&type=$t&from=0&to=9999999999${3:+&labels=$3}"
        c=0; [ "$HTTP_STATUS" = 200 ] && c=$(json 'len(j["body"])')
        n=$((n + c))
    done
    echo "$n"
}
# sig DIR: the tree under DIR with ids masked, each file with its md5: two
# trees with the same profiles (bytes, types, labels, created_at) have the
# same signature whatever their ids.
sig() {
    (cd "$1" && find . -type f | sort | while read -r f; do
        echo "$(echo "$f" | sed 's/_[0-9a-v]\{20\}\./_ID./') $(md5sum < "$f" | cut -d' ' -f1)"
    done | sort)
}
# same_bytes FILE DIR: how many files under DIR have FILE's bytes.
same_bytes() {
    local n=0 f
    while read -r f; do cmp -s "$f" "$1" && n=$((n + 1)); done < <(find "$2" -type f)
    echo "$n"
}
logged() { grep -c -- "$1" "$SERVER_LOG"; }

# ---- 1. the same name written again and again ---------------------------------------
check "mkdir -p of a new service, type and label dir" mkdir -p "$MNT/api/heap/region=eu"
for i in 000 005 010; do
    cat "$FIXTURES/heap_$i.pb.gz" > "$MNT/api/heap/region=eu/x"
    assert_eq "cat > the same name, round $i" 0 "$?"
done
assert_eq "three redirections, three profiles" 3 "$(count api heap region=eu)"
mkdir "$MNT/api/mutex"
python3 - "$MNT/api/mutex/same.pb.gz" "$FIXTURES" <<'EOF' || fail "python open(path, 'wb') of one name twice"
import sys
for i in ("005", "010"):
    with open(sys.argv[1], "wb") as f:
        f.write(open("%s/mutex_%s.pb.gz" % (sys.argv[2], i), "rb").read())
EOF
assert_eq "python wrote one name twice: two profiles" 2 "$(count api mutex)"

# ---- 2. label directories in any key order --------------------------------------------
check "mkdir -p of a label dir in another key order" mkdir -p "$MNT/api/cpu/region=eu,host=a"
assert_eq "listed under its canonical name" "host=a,region=eu" "$(ls "$MNT/api/cpu")"
out=$(cp "$FIXTURES/cpu_001.pb.gz" "$MNT/api/cpu/region=eu,host=a/" 2>&1)
assert_eq "cp into region=eu,host=a/" "0 " "$? $out"
cp "$FIXTURES/cpu_002.pb.gz" "$MNT/api/cpu/host=a,region=eu/"
assert_eq "both orders label alike" 2 "$(count api cpu host=a,region=eu)"
http GET "$URL/api/0/profiles?service=api&type=cpu&from=0&to=9999999999&labels=region=eu,host=a"
assert_eq "labels over HTTP" "host=a,region=eu" "$(json '",".join(sorted(l["key"] + "=" + l["value"] for l in j["body"][0]["labels"]))')"
curl -s -o "$T/hm.pb.gz" "$URL/api/0/profiles/merge?service=api&type=cpu&from=0&to=now&labels=region=eu,host=a"
cat "$MNT/merge/api/cpu/region=eu,host=a/0..now" > "$T/fm.pb.gz"
assert_eq "merge path in another key order" 0 "$?"
check "merge in another key order = HTTP merge" cmp -s "$T/fm.pb.gz" "$T/hm.pb.gz"
cp "$FIXTURES/cpu_003.pb.gz" "$MNT/api/cpu/plain.pb.gz" 2>/dev/null ||
    { mkdir -p "$MNT/api/cpu" && cp "$FIXTURES/cpu_003.pb.gz" "$MNT/api/cpu/plain.pb.gz"; }
head -c 3000 /dev/urandom > "$T/trace.bin"
mkdir "$MNT/api/trace" && cp "$T/trace.bin" "$MNT/api/trace/t.trace"
TOTAL=$(count api)
assert_eq "profiles in api" 9 "$TOTAL"

# ---- 3. every profile at exactly one path ---------------------------------------------------
assert_eq "find lists each profile once" "$TOTAL" "$(find "$MNT/api" -type f | wc -l)"
sizes=$(find "$MNT/api" -type f -printf '%s\n' | awk '{ b += int(($1 + 511) / 512) } END { print b }')
assert_eq "du counts each profile once" "$sizes" "$(du -s --block-size=512 "$MNT/api" | cut -f1)"
assert_eq "no profile name twice" "$(find "$MNT/api" -type f -printf '%f\n' | sort -u | wc -l)" "$TOTAL"

# ---- 4. round trips -----------------------------------------------------------------------------
SIG=$(sig "$MNT/api")
check "cp -r out of the mount" cp -r "$MNT/api" "$T/backup"
assert_eq "cp -r out: every profile" "$TOTAL" "$(find "$T/backup" -type f | wc -l)"
assert_eq "cp -r out: same tree and bytes" "$SIG" "$(sig "$T/backup")"
out=$(cp -r "$T/backup" "$MNT/api2" 2>&1)
assert_eq "cp -r back into a new service" "0 " "$? $out"
assert_eq "cp -r back: same profiles" "$TOTAL" "$(count api2)"
assert_eq "cp -r back: the same tree (labels, created_at, bytes)" "$SIG" "$(sig "$MNT/api2")"

(tar -C "$MNT" -cf - api | tar -C "$MNT" -xf - --transform 's,^api,api3,') 2>"$T/tar.err"
assert_eq "tar out of the mount and into it" "0 " "$? $(cat "$T/tar.err")"
assert_eq "tar: same profiles" "$TOTAL" "$(count api3)"
assert_eq "tar: the same tree" "$SIG" "$(sig "$MNT/api3")"

out=$(rsync -a "$T/backup/" "$MNT/api4/" 2>&1)
assert_eq "rsync -a into the mount" "0 " "$? $out"
assert_eq "rsync: the same tree" "$SIG" "$(sig "$MNT/api4")"
out=$(rsync -a "$T/backup/" "$MNT/api4/" 2>&1)
assert_eq "rsync -a again" "0 " "$? $out"
assert_eq "rsync again adds nothing" "$TOTAL" "$(count api4)"

before=$(count api cpu)
out=$(cp -p "$FIXTURES/cpu_004.pb.gz" "$MNT/api/cpu/" 2>&1)
assert_eq "cp -p" "0 " "$? $out"
out=$(install -m 644 "$FIXTURES/cpu_005.pb.gz" "$MNT/api/cpu/" 2>&1)
assert_eq "install -m 644" "0 " "$? $out"
out=$(python3 -c 'import shutil, sys; shutil.copy2(sys.argv[1], sys.argv[2])' "$FIXTURES/cpu_006.pb.gz" "$MNT/api/cpu/" 2>&1)
assert_eq "shutil.copy2" "0 " "$? $out"
python3 - "$MNT/api/cpu" "$FIXTURES/cpu_007.pb.gz" <<'EOF' || fail "an editor's save: write a temporary file, rename it"
import os, sys
d, src = sys.argv[1], sys.argv[2]
tmp = os.path.join(d, ".profile.pb.gz.swp")
with open(tmp, "wb") as f:
    f.write(open(src, "rb").read())
    f.flush()
    os.fsync(f.fileno())
os.chmod(tmp, 0o644)
os.rename(tmp, os.path.join(d, "profile.pb.gz"))
st = os.stat(os.path.join(d, "profile.pb.gz"))
assert st.st_size == os.path.getsize(src), st
assert not os.path.exists(tmp)
EOF
assert_eq "cp -p, install, copy2 and a save stored once each" $((before + 4)) "$(count api cpu)"
for i in 4 5 6 7; do
    assert_eq "cpu_00$i stored once, listed once" 1 "$(same_bytes "$FIXTURES/cpu_00$i.pb.gz" "$MNT/api/cpu")"
done
check "the temporary name is not listed" sh -c "! ls -a '$MNT/api/cpu' | grep -q swp"
name=$(ls "$MNT/api/cpu" | grep 'pb.gz$' | head -1)
check "chmod of a stored profile succeeds" chmod 600 "$MNT/api/cpu/$name"
check "touch of a stored profile succeeds" touch -d @1 "$MNT/api/cpu/$name"
assert_eq "and changes nothing" "444 $(date -u -d "${name:0:8} ${name:9:2}:${name:11:2}:${name:13:2}" +%s)" \
    "$(stat -c '%a %Y' "$MNT/api/cpu/$name")"
assert_contains "truncating a stored profile" "$(truncate -s 0 "$MNT/api/cpu/$name" 2>&1)" "Permission denied"

# ---- 5. a file is exactly what was written to it ---------------------------------------------
mkdir -p "$MNT/split/cpu" "$MNT/split/heap"
{ head -c 1000 "$FIXTURES/cpu_008.pb.gz"; tail -c +1001 "$FIXTURES/cpu_008.pb.gz"; } > "$MNT/split/cpu/x" 2>/dev/null
assert_eq "two processes write one file: one profile" 1 "$(count split cpu)"
assert_eq "its bytes are the whole file" 1 "$(same_bytes "$FIXTURES/cpu_008.pb.gz" "$MNT/split/cpu")"
{ cat "$FIXTURES/heap_000.pb.gz"; cat "$FIXTURES/heap_005.pb.gz"; } > "$MNT/split/heap/y" 2>/dev/null
assert_eq "the first part is never left stored alone" 0 "$(same_bytes "$FIXTURES/heap_000.pb.gz" "$MNT/split/heap")"
check "replacing it is logged" grep -q "was written again after a close" "$SERVER_LOG"

mkdir -p "$MNT/durable/goroutine"
python3 - "$MNT/durable/goroutine/g.pb.gz" "$FIXTURES/goroutine_005.pb.gz" "$T/fsynced" <<'EOF' &
import os, sys, time
f = open(sys.argv[1], "wb")
f.write(open(sys.argv[2], "rb").read())
f.flush()
os.fsync(f.fileno())
open(sys.argv[3], "w").close()
time.sleep(30)   # killed with the server, never closed
EOF
PYPID=$!
for i in $(seq 1 100); do [ -e "$T/fsynced" ] && break; sleep 0.1; done
check "fsync returned" test -e "$T/fsynced"

# ---- 10. kill -9, then serve again on the same mount point -------------------------------------
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
kill "$PYPID" 2>/dev/null; wait "$PYPID" 2>/dev/null
assert_contains "the killed server left a dead mount" "$(stat "$MNT" 2>&1)" "Transport endpoint is not connected"
start_server --mount "$MNT" || t_done
check "serve recovers the dead mount point" mountpoint -q "$MNT"
check "and says so" grep -q "stale mount of a killed process" "$SERVER_LOG"
assert_eq "fsync'ed before kill -9: durable" 1 "$(count durable goroutine)"
assert_eq "fsync'ed profile: whole bytes" 1 "$(same_bytes "$FIXTURES/goroutine_005.pb.gz" "$MNT/durable/goroutine")"
out=$("$PROFEFS" serve --data "$T/data2" --addr 127.0.0.1:0 --mount "$MNT" 2>&1); rc=$?
check "a second serve on a live mount refuses" [ "$rc" != 0 ]
assert_contains "and says why" "$out" "already mounted"
check "the first mount still works" test -d "$MNT/api/cpu"

# ---- 7. refusals: errno and a log line with the reason ------------------------------------------
for r in 'now..now-1h' garbage 'now-1x..now' '2026-13-45T00:00:00..now'; do
    assert_contains "merge path $r: ENOENT" "$(cat "$MNT/merge/api/cpu/$r" 2>&1)" "No such file"
    check "merge path $r: logged" grep -q "no such path /merge/api/cpu/$r: " "$SERVER_LOG"
done
check "a bad range says why" grep -q "merge/api/cpu/garbage: not a range" "$SERVER_LOG"
assert_contains "mkdir in the merge tree" "$(mkdir "$MNT/merge/x" 2>&1)" "Permission denied"
check "mkdir in the merge tree: logged" grep -q "mkdir /merge/x: Permission denied (the merge tree is read-only)" "$SERVER_LOG"
assert_contains "an unknown type dir" "$(ls "$MNT/api/bogus" 2>&1)" "No such file"
check "an unknown type dir: logged" grep -q "no such path /api/bogus: not a type" "$SERVER_LOG"
assert_contains "mkdir of an unknown type" "$(mkdir "$MNT/api/bogus" 2>&1)" "Invalid argument"
assert_contains "cp into an unknown type" "$(cp "$FIXTURES/cpu_000.pb.gz" "$MNT/api/bogus/" 2>&1)" "Not a directory"

# ---- 8. rm -r of a service, rmdir of empty directories ----------------------------------------------
out=$(rm -r "$MNT/api2" 2>&1)
assert_eq "rm -r of a service" "0 " "$? $out"
check "the service is gone from the mount" sh -c "! ls '$MNT' | grep -qx api2"
http GET "$URL/api/0/services"
check "the service is gone over HTTP" sh -c "! echo '$HTTP_BODY' | grep -q '\"api2\"'"
assert_eq "its profiles are gone" 0 "$(count api2)"
check "mkdir of a typo service" mkdir "$MNT/tpyo"
check "rmdir of the typo" rmdir "$MNT/tpyo"
check "mkdir -p of an empty label dir" mkdir -p "$MNT/api/block/k=v"
assert_contains "rmdir of a type dir that holds a label dir" "$(rmdir "$MNT/api/block" 2>&1)" "not empty"
check "rmdir of the empty label dir" rmdir "$MNT/api/block/k=v"
check "rmdir of the empty type dir" rmdir "$MNT/api/block"
check "the type dir is gone" sh -c "! test -e '$MNT/api/block'"
assert_contains "rmdir of a label dir with profiles" "$(rmdir "$MNT/api/heap/region=eu" 2>&1)" "not empty"

# ---- df: the repository's size used, its data directory's disk free ---------------------------------
stored=$(find "$MNT" -path "$MNT/merge" -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
read -r used avail <<<"$(df -B1 --output=used,avail "$MNT" | tail -1)"
check "df used ($used) at least the stored bytes ($stored)" [ "$used" -ge "$stored" ]
check "df used is not absurd" [ "$used" -lt $((stored * 100 + (64 << 20))) ]
disk=$(df -B1 --output=avail "$T/data" | tail -1 | tr -d ' ')
check "df available ($avail) is the data directory's disk's ($disk), not 0" \
    [ "$avail" -gt 0 ] && [ $((avail - disk)) -lt $((256 << 20)) ] && [ $((disk - avail)) -lt $((256 << 20)) ]

# ---- read-only: every change refused with EROFS ------------------------------------------------------
stop_server
start_server --mount "$MNT" --read-only || t_done
assert_contains "rm -r read-only" "$(rm -rf "$MNT/api3" 2>&1)" "Read-only file system"
assert_contains "rmdir read-only" "$(rmdir "$MNT/api/heap" 2>&1)" "Read-only file system"
assert_contains "chmod read-only" "$(chmod 600 "$MNT/api/cpu/$name" 2>&1)" "Read-only file system"
assert_eq "nothing removed read-only" "$TOTAL" "$(count api3)"
stop_server
t_done
