#!/usr/bin/env bash
# tests/integration/fuse_ingest.sh — writing into the FUSE view: cp of every
# type (and a trace) ingests on close under the canonical name with the
# same bytes; label directories label new files; garbage makes close fail
# with EINVAL and stores nothing; a descriptor closed twice (dup) ingests
# once; truncate/utimens of a file being written work; mkdir creates
# services, type and label directories; rm deletes; a profile is durable
# once cp returned (kill -9);
# --read-only refuses every write with EROFS.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" || t_done

# count SERVICE TYPE [LABELS]: profiles the HTTP list has.
count() {
    http GET "$URL/api/0/profiles?service=$1&type=$2&from=0&to=9999999999${3:+&labels=$3}"
    if [ "$HTTP_STATUS" = 404 ]; then echo 0; else json 'len(j["body"])'; fi
}
# only_id SERVICE TYPE [LABELS]: the id of the one profile listed.
only_id() {
    http GET "$URL/api/0/profiles?service=$1&type=$2&from=0&to=9999999999${3:+&labels=$3}"
    json 'j["body"][0]["id"] if len(j["body"]) == 1 else "count=%d" % len(j["body"])'
}

# ---- mkdir creates a service -------------------------------------------------------
check "mkdir of a service" mkdir "$MNT/svc"
http GET "$URL/api/0/services"
assert_eq "service listed over HTTP" "['svc']" "$(json 'j["body"]')"
assert_eq "a new service is empty" 0 "$(ls "$MNT/svc" | wc -l)"
assert_contains "cp into a type dir never made" "$(cp "$FIXTURES/cpu_005.pb.gz" "$MNT/svc/cpu/" 2>&1)" "Not a directory"
assert_contains "mkdir of a bad service name" "$(mkdir "$MNT/a"$'\001'"b" 2>&1)" "Invalid argument"
assert_contains "mkdir .hidden" "$(mkdir "$MNT/.hidden" 2>&1)" "Invalid argument"
assert_contains "mkdir merge" "$(mkdir "$MNT/merge" 2>&1)" "File exists"
assert_contains "mkdir of a new type" "$(mkdir "$MNT/svc/newtype" 2>&1)" "Invalid argument"
for type in cpu heap block mutex goroutine threadcreate other trace; do
    check "mkdir svc/$type" mkdir "$MNT/svc/$type"
done
assert_eq "the type dirs made are listed" "block cpu goroutine heap mutex other threadcreate trace" \
    "$(ls "$MNT/svc" | tr '\n' ' ' | sed 's/ $//')"
assert_contains "mkdir of a type dir again" "$(mkdir "$MNT/svc/cpu" 2>&1)" "File exists"

# ---- cp of every type ----------------------------------------------------------------
for type in cpu heap block mutex goroutine threadcreate; do
    src="$FIXTURES/${type}_005.pb.gz"
    out=$(cp "$src" "$MNT/svc/$type/" 2>&1); rc=$?
    assert_eq "cp into svc/$type" "0 " "$rc $out"
    id=$(only_id svc "$type")
    curl -s -o "$T/back" "$URL/api/0/profiles/$id"
    check "svc/$type: HTTP bytes identical" cmp -s "$T/back" "$src"
    name=$(ls "$MNT/svc/$type")
    case "$name" in
        [0-9]*T[0-9]*Z_"$id".pb.gz) ok ;;
        *) fail "svc/$type listed as [$name], id $id" ;;
    esac
    check "svc/$type: read back identical" cmp -s "$MNT/svc/$type/$name" "$src"
done
cp "$FIXTURES/cpu_006.pb.gz" "$MNT/svc/other/x.pb.gz"
check "type other takes any pprof" [ "$(count svc other)" = 1 ]

head -c 5000 /dev/urandom > "$T/trace.bin"
check "cp of a trace" cp "$T/trace.bin" "$MNT/svc/trace/t.bin"
id=$(only_id svc trace)
curl -s -o "$T/back" "$URL/api/0/profiles/$id"
check "trace bytes identical over HTTP" cmp -s "$T/back" "$T/trace.bin"
case "$(ls "$MNT/svc/trace")" in *_"$id".trace) ok ;; *) fail "trace name [$(ls "$MNT/svc/trace")]" ;; esac

# ---- label directories ----------------------------------------------------------------
# A label dir exists once made (or once it holds profiles).
check "mkdir -p of a label dir" mkdir -p "$MNT/svc/cpu/k=v"
assert_contains "plain mkdir of a label dir" "$(mkdir "$MNT/svc/cpu/k=v" 2>&1)" "File exists"
assert_eq "an empty label dir lists nothing" "" "$(ls "$MNT/svc/cpu/k=v")"
check "an empty label dir shows in its type dir" [ -d "$MNT/svc/cpu/k=v" ]
sh -c "cat '$FIXTURES/cpu_007.pb.gz' > '$MNT/svc/cpu/k=v/anything'"
assert_eq "shell redirection exit status" 0 "$?"
assert_eq "labelled profile listed with k=v" 1 "$(count svc cpu k=v)"
http GET "$URL/api/0/profiles?service=svc&type=cpu&from=0&to=9999999999&labels=k=v"
assert_eq "labels of the new profile" "[{'key': 'k', 'value': 'v'}]" "$(json 'j["body"][0]["labels"]')"
assert_eq "svc/cpu now has 2" 2 "$(count svc cpu)"
assert_eq "label dir lists it" 1 "$(ls "$MNT/svc/cpu/k=v" | wc -l)"
assert_eq "the name written is not listed" "$(ls "$MNT/svc/cpu/k=v" | grep -c '^[0-9]*T[0-9]*Z_.*\.pb\.gz$')" "$(ls "$MNT/svc/cpu/k=v" | wc -l)"
assert_contains "redirection into a label dir never made" \
    "$(sh -c "cat '$FIXTURES/heap_010.pb.gz' > '$MNT/svc/heap/region=eu/x'" 2>&1)" "nonexistent"
mkdir -p "$MNT/svc/heap/region=eu" && cat "$FIXTURES/heap_010.pb.gz" > "$MNT/svc/heap/region=eu/x"
assert_eq "redirection into a label dir made with mkdir -p" 0 "$?"
http GET "$URL/api/0/profiles?service=svc&type=heap&from=0&to=9999999999&labels=region=eu"
assert_eq "labels of a profile written into a new label dir" "[{'key': 'region', 'value': 'eu'}]" \
    "$(json 'j["body"][0]["labels"]')"
assert_eq "the new label dir lists it" 1 "$(ls "$MNT/svc/heap/region=eu" | wc -l)"
check "mkdir -p of an escaped label set" mkdir -p "$MNT/svc/heap/env=prod,team=a%2Cb"
cp "$FIXTURES/heap_010.pb.gz" "$MNT/svc/heap/env=prod,team=a%2Cb/h"
# labels=team=a%2Cb, url-escaped once more for the query string
http GET "$URL/api/0/profiles?service=svc&type=heap&from=0&to=9999999999&labels=team%3Da%252Cb"
assert_eq "escaped label value" "[{'key': 'env', 'value': 'prod'}, {'key': 'team', 'value': 'a,b'}]" \
    "$(json 'j["body"][0]["labels"]')"
assert_contains "mkdir of a non-label dir" "$(mkdir "$MNT/svc/cpu/novalue" 2>&1)" "Invalid argument"
check "mkdir of a non-canonical label dir" mkdir "$MNT/svc/cpu/b=2,a=1"
assert_eq "it is listed under its canonical name" "a=1,b=2" "$(ls "$MNT/svc/cpu" | grep -x 'a=1,b=2')"
check "mkdir -p of another label dir" mkdir -p "$MNT/svc/cpu/k=w"
check "rmdir of an empty label dir" rmdir "$MNT/svc/cpu/k=w"
assert_eq "the removed label dir is no longer listed" "" "$(ls "$MNT/svc/cpu" | grep -x 'k=w')"
assert_contains "rmdir of a label dir with profiles" "$(rmdir "$MNT/svc/cpu/k=v" 2>&1)" "not empty"
assert_contains "rmdir of a service with profiles" "$(rmdir "$MNT/svc" 2>&1)" "not empty"

# ---- bad input: close fails, nothing stored ----------------------------------------------
head -c 4096 /dev/urandom > "$T/garbage"
before=$(count svc cpu)
out=$(cp "$T/garbage" "$MNT/svc/cpu/garbage.pb.gz" 2>&1); rc=$?
check "cp of garbage fails" [ "$rc" != 0 ]
assert_contains "cp of garbage: EINVAL" "$out" "Invalid argument"
assert_eq "nothing stored for garbage" "$before" "$(count svc cpu)"
check "garbage name not left behind" [ ! -e "$MNT/svc/cpu/garbage.pb.gz" ]
printf 'not a profile' > "$T/small"
# cat reports the error of closing its stdout (a shell builtin would not)
out=$(sh -c "cat '$T/small' > '$MNT/svc/cpu/x'" 2>&1); rc=$?
check "redirection of garbage fails" [ "$rc" != 0 ]
assert_contains "redirection of garbage: EINVAL" "$out" "Invalid argument"
assert_eq "nothing stored for redirected garbage" "$before" "$(count svc cpu)"
# (gzip's magic first: a file that cannot begin a profile fails earlier, EINVAL)
{ printf '\037\213'; head -c $((33 << 20)) /dev/zero; } > "$T/big"
out=$(cp "$T/big" "$MNT/svc/cpu/big" 2>&1); rc=$?
check "cp of 33 MiB fails" [ "$rc" != 0 ]
assert_contains "cp of 33 MiB: EFBIG" "$out" "File too large"
assert_eq "nothing stored for the big file" "$before" "$(count svc cpu)"
check "an empty file stores nothing" sh -c ": > '$MNT/svc/cpu/empty'"
assert_eq "nothing stored for the empty file" "$before" "$(count svc cpu)"
assert_contains "writing over a stored profile" \
    "$(cp "$FIXTURES/cpu_001.pb.gz" "$MNT/svc/cpu/$(ls "$MNT/svc/cpu" | grep pb.gz | head -1)" 2>&1)" \
    "Permission denied"

# ---- one ingest per handle; setattr on a file being written -------------------------------
python3 - "$MNT/svc/goroutine/dup.pb.gz" "$FIXTURES/goroutine_010.pb.gz" <<'EOF' || fail "python dup/truncate/utime"
import os, sys
path, src = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
fd2 = os.dup(fd)
os.write(fd, b'\x1f\x8b' + b'x' * 98)   # may begin a profile
os.ftruncate(fd, 0)            # truncate while open
os.lseek(fd, 0, os.SEEK_SET)
os.write(fd, data)
os.utime(path)                  # utimens by path while open
os.chmod(path, 0o600)           # chmod while open
assert os.fstat(fd).st_size == len(data), os.fstat(fd).st_size
assert os.stat(path).st_size == len(data), os.stat(path).st_size
os.close(fd2)                   # first close: ingests
os.close(fd)                    # second close of the same file: no-op
EOF
assert_eq "dup'ed descriptor ingested once" 2 "$(count svc goroutine)"
same=0
for f in "$MNT"/svc/goroutine/*.pb.gz; do cmp -s "$f" "$FIXTURES/goroutine_010.pb.gz" && same=$((same + 1)); done
assert_eq "the truncated and rewritten file stored exactly" 1 "$same"
check "cp -p works" cp -p "$FIXTURES/block_010.pb.gz" "$MNT/svc/block/p.pb.gz"
assert_eq "cp -p stored" 2 "$(count svc block)"

# ---- rm deletes ----------------------------------------------------------------------------
id=$(only_id svc threadcreate)
name=$(ls "$MNT/svc/threadcreate")
check "rm of a stored profile" rm "$MNT/svc/threadcreate/$name"
http GET "$URL/api/0/profiles/$id"
assert_eq "HTTP 404 after rm" 404 "$HTTP_STATUS"
assert_eq "gone from the listing" "" "$(ls "$MNT/svc/threadcreate")"
assert_contains "rm again" "$(rm "$MNT/svc/threadcreate/$name" 2>&1)" "No such file"

# ---- durability: acknowledged by close, then kill -9 ------------------------------------------
check "cp before the crash" cp "$FIXTURES/mutex_010.pb.gz" "$MNT/svc/mutex/crash.pb.gz"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
start_server --mount "$MNT" || t_done
assert_eq "profile there after kill -9 and restart" 2 "$(count svc mutex)"
check "readable through the new mount" sh -c "ls '$MNT/svc/mutex' | grep -q pb.gz"

# ---- read-only ------------------------------------------------------------------------------------
stop_server
start_server --mount "$MNT" --read-only || t_done
name=$(ls "$MNT/svc/cpu" | grep pb.gz | head -1)
check "reading works read-only" test -s "$MNT/svc/cpu/$name"
assert_contains "cp read-only" "$(cp "$FIXTURES/cpu_008.pb.gz" "$MNT/svc/cpu/" 2>&1)" "Read-only file system"
assert_contains "rm read-only" "$(rm -f "$MNT/svc/cpu/$name" 2>&1)" "Read-only file system"
assert_contains "mkdir read-only" "$(mkdir "$MNT/svc2" 2>&1)" "Read-only file system"
assert_contains "cp into a label dir read-only" "$(cp "$FIXTURES/cpu_002.pb.gz" "$MNT/svc/cpu/k=v/x" 2>&1)" "Read-only file system"
check "profile still there" test -s "$MNT/svc/cpu/$name"
assert_eq "nothing changed read-only" 2 "$(count svc cpu)"
stop_server
check "unmounted after SIGTERM" sh -c "! mountpoint -q '$MNT'"
t_done
