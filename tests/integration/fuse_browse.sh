#!/usr/bin/env bash
# tests/integration/fuse_browse.sh — browsing the FUSE view: services, the
# types that hold profiles, label directories (each profile in exactly the
# directory of its label set) and stored profiles with their exact sizes,
# mtime = created_at (as the HTTP list says), mode 0444, the labels xattr,
# byte-identical reads, the --window listing, and errno for names that
# cannot exist.
. "$TESTS_DIR/lib.sh"
t_init

MNT=$T/mnt
start_server --mount "$MNT" || t_done

# stamp ISO-TIME -> 20060102T150405Z
stamp() { date -u -d "$1" +%Y%m%dT%H%M%SZ; }

head -c 3000 /dev/urandom > "$T/trace.bin"
declare -A SRC   # id -> file ingested
id=$(ingest "$FIXTURES/cpu_000.pb.gz" api cpu);                     SRC[$id]=$FIXTURES/cpu_000.pb.gz; ID_PLAIN=$id
id=$(ingest "$FIXTURES/cpu_001.pb.gz" api cpu 'env=prod');          SRC[$id]=$FIXTURES/cpu_001.pb.gz; ID_PROD=$id
id=$(ingest "$FIXTURES/cpu_002.pb.gz" api cpu 'region=eu,env=prod'); SRC[$id]=$FIXTURES/cpu_002.pb.gz; ID_EU=$id
id=$(ingest "$FIXTURES/heap_000.pb.gz" api heap);                   SRC[$id]=$FIXTURES/heap_000.pb.gz; ID_HEAP=$id
id=$(ingest "$T/trace.bin" api trace '' 1700000000);                SRC[$id]=$T/trace.bin; ID_TRACE=$id
ingest "$FIXTURES/block_000.pb.gz" web block >/dev/null
assert_eq "ids returned" 5 "${#SRC[@]}"

# ---- directories -------------------------------------------------------------------
assert_eq "ls MNT" "api diff merge web" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "ls MNT/api: the types that hold profiles" "cpu heap trace" \
    "$(ls "$MNT/api" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "a service with one profile" "block" "$(ls "$MNT/web")"
assert_contains "a type without profiles is not there" "$(ls "$MNT/web/heap" 2>&1)" "No such file"
assert_eq "stat of a service dir" "directory 755" "$(stat -c '%F %a' "$MNT/api")"
assert_eq "stat of a type dir" "directory 755" "$(stat -c '%F %a' "$MNT/api/cpu")"

# ---- stored profiles: names, sizes, times, modes, as the HTTP list says ------------------
http GET "$URL/api/0/profiles?service=api&type=cpu&from=0&to=9999999999"
assert_eq "HTTP list of api/cpu" 200 "$HTTP_STATUS"
expected=""
while read -r pid created labels; do
    name="$(stamp "$created")_$pid.pb.gz"
    [ -z "$labels" ] && expected="$expected $name"
    f="$MNT/api/cpu/${labels:+$labels/}$name"
    want="regular file $(stat -c %s "${SRC[$pid]}") $(date -u -d "$created" +%s) 444"
    assert_eq "stat of $name" "$want" "$(stat -c '%F %s %Y %a' "$f" 2>&1)"
    assert_eq "ctime of $name" "$(date -u -d "$created" +%s)" "$(stat -c %Z "$f")"
    check "cat of $name is byte-identical" cmp -s "$f" "${SRC[$pid]}"
done < <(json '"\n".join(m["id"] + " " + m["created_at"] + " " + ",".join(l["key"] + "=" + l["value"] for l in sorted(m["labels"], key=lambda l: l["key"])) for m in j["body"])')
expected=$(echo $expected | tr ' ' '\n' | sort | tr '\n' ' ')
assert_eq "api/cpu lists its unlabelled profile" "$expected" \
    "$(ls -p "$MNT/api/cpu" | grep -v /$ | tr '\n' ' ')"
assert_eq "label dirs listed in api/cpu" "env=prod/ env=prod,region=eu/" \
    "$(ls -p "$MNT/api/cpu" | grep /$ | tr '\n' ' ' | sed 's/ $//')"

NAME_PLAIN=$(cd "$MNT/api/cpu" && ls | grep "_$ID_PLAIN.pb.gz")
NAME_PROD=$(cd "$MNT/api/cpu/env=prod" && ls | grep "_$ID_PROD.pb.gz")
NAME_EU=$(cd "$MNT/api/cpu/env=prod,region=eu" && ls | grep "_$ID_EU.pb.gz")
NAME_TRACE=$(ls "$MNT/api/trace")
assert_eq "trace name (created_at hint)" "20231114T221320Z_$ID_TRACE.trace" "$NAME_TRACE"
check "trace read back identical" cmp -s "$MNT/api/trace/$NAME_TRACE" "$T/trace.bin"
assert_eq "trace size" 3000 "$(stat -c %s "$MNT/api/trace/$NAME_TRACE")"
check "heap read back identical" cmp -s "$MNT/api/heap/$(ls "$MNT/api/heap")" "$FIXTURES/heap_000.pb.gz"

# ls -l agrees with stat (readdirplus attributes)
assert_eq "ls -l size of $NAME_EU" "$(stat -c %s "$FIXTURES/cpu_002.pb.gz")" \
    "$(ls -l "$MNT/api/cpu/env=prod,region=eu" | awk -v n="$NAME_EU" '$NF == n { print $5 }')"

# ---- label directories: exactly one path per profile ----------------------------------------
assert_eq "env=prod lists exactly its set" "$NAME_PROD" "$(ls "$MNT/api/cpu/env=prod")"
assert_eq "env=prod,region=eu lists one" "$NAME_EU" "$(ls "$MNT/api/cpu/env=prod,region=eu")"
assert_contains "a label set no profile has is not there" "$(ls "$MNT/api/cpu/region=eu" 2>&1)" "No such file"
check "in the merge tree a subset filter works" [ -d "$MNT/merge/api/cpu/region=eu" ]
check "stored file through its label dir" cmp -s "$MNT/api/cpu/env=prod/$NAME_PROD" "$FIXTURES/cpu_001.pb.gz"
assert_contains "a labelled profile is not in its type dir" "$(stat "$MNT/api/cpu/$NAME_PROD" 2>&1)" "No such file"
assert_eq "find lists every profile once" 5 "$(find "$MNT/api" -type f | wc -l)"
assert_eq "du counts every profile once" \
    "$(( ($(stat -c %s "$FIXTURES/cpu_000.pb.gz") + 511) / 512 + ($(stat -c %s "$FIXTURES/cpu_001.pb.gz") + 511) / 512 + ($(stat -c %s "$FIXTURES/cpu_002.pb.gz") + 511) / 512 + ($(stat -c %s "$FIXTURES/heap_000.pb.gz") + 511) / 512 + 6 ))" \
    "$(du -s --block-size=512 "$MNT/api" | cut -f1)"
assert_eq "find lists the label dirs" 2 "$(find "$MNT/api" -mindepth 2 -type d | wc -l)"

# ---- labels as an extended attribute ----------------------------------------------------
xattr() { python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.profefs.labels").decode())' "$1" 2>&1; }
assert_eq "xattr of a labelled profile" "env=prod,region=eu" "$(xattr "$MNT/api/cpu/env=prod,region=eu/$NAME_EU")"
assert_eq "xattr of an unlabelled profile" "" "$(xattr "$MNT/api/cpu/$NAME_PLAIN")"
assert_eq "listxattr" "['user.profefs.labels']" \
    "$(python3 -c 'import os,sys; print(os.listxattr(sys.argv[1]))' "$MNT/api/cpu/env=prod/$NAME_PROD")"
assert_contains "no such xattr" \
    "$(python3 -c 'import os,sys; os.getxattr(sys.argv[1], "user.other")' "$MNT/api/cpu/env=prod/$NAME_PROD" 2>&1)" \
    "No data available"
if command -v getfattr >/dev/null; then
    assert_eq "getfattr" "env=prod" \
        "$(getfattr --only-values -n user.profefs.labels "$MNT/api/cpu/env=prod/$NAME_PROD")"
fi

# ---- names that cannot exist --------------------------------------------------------------
enoent() {  # enoent DESCRIPTION PATH: stat fails with ENOENT
    assert_contains "$1" "$(stat "$2" 2>&1)" "No such file or directory"
}
enoent "unknown service" "$MNT/nosuch"
enoent "unknown type" "$MNT/api/CPU"
enoent "control character" "$MNT/api/cpu/a"$'\001'"b"
enoent "stored name with a wrong time stamp" "$MNT/api/cpu/20000101T000000Z_$ID_PLAIN.pb.gz"
enoent "stored name under another service" "$MNT/web/cpu/$NAME_PLAIN"
enoent "stored name under another type" "$MNT/api/heap/$NAME_PLAIN"
enoent "stored name with the wrong extension" "$MNT/api/cpu/${NAME_PLAIN%.pb.gz}.trace"
enoent "stored name in a label dir it does not match" "$MNT/api/cpu/env=prod/$NAME_PLAIN"
assert_eq "a label dir in any key order is the canonical one" "$NAME_EU" "$(ls "$MNT/api/cpu/region=eu,env=prod")"
enoent "too deep" "$MNT/api/cpu/env=prod/x/y"
enoent "a label dir nothing has (and never made)" "$MNT/api/cpu/env=dev"
enoent "unknown id" "$MNT/api/cpu/20231114T221320Z_00000000000000000000.pb.gz"
enoent "trace in merge" "$MNT/merge/api/trace"
enoent "bad merge range" "$MNT/merge/api/cpu/yesterday..now"
enoent "merge range from > to" "$MNT/merge/api/cpu/now..now-1h"
assert_contains "creating a file with a control character" \
    "$(touch "$MNT/api/cpu/a"$'\002'"b" 2>&1)" "Invalid argument"
assert_contains "writing to a stored profile" \
    "$(sh -c "echo x >> '$MNT/api/cpu/$NAME_PLAIN'" 2>&1)" "Permission denied"
assert_contains "truncating a stored profile" \
    "$(sh -c ": > '$MNT/api/cpu/$NAME_PLAIN'" 2>&1)" "Permission denied"
check "stored profile unchanged" cmp -s "$MNT/api/cpu/$NAME_PLAIN" "$FIXTURES/cpu_000.pb.gz"
assert_contains "mkdir merge" "$(mkdir "$MNT/merge" 2>&1)" "File exists"
assert_contains "a file at the top" "$(touch "$MNT/x" 2>&1)" "Operation not permitted"
assert_contains "a file in a service dir (not a type)" "$(touch "$MNT/api/x" 2>&1)" "Invalid argument"
assert_contains "a file in the merge view" "$(touch "$MNT/merge/api/cpu/x" 2>&1)" "Permission denied"

# ---- --window: type directories list recent profiles only --------------------------------
stop_server
now=$(date +%s)
retime "$FIXTURES/mutex_005.pb.gz" "$T/old.pb.gz" $((now - 7200))
retime "$FIXTURES/mutex_010.pb.gz" "$T/new.pb.gz" $((now - 600))
start_server --mount "$MNT" --window 1h || t_done
id_old=$(ingest "$T/old.pb.gz" win mutex)
id_new=$(ingest "$T/new.pb.gz" win mutex)
assert_eq "window lists the recent profile only" \
    "$(date -u -d @$((now - 600)) +%Y%m%dT%H%M%SZ)_$id_new.pb.gz" "$(ls "$MNT/win/mutex")"
name_old="$(date -u -d @$((now - 7200)) +%Y%m%dT%H%M%SZ)_$id_old.pb.gz"
check "an older profile is still there by name" cmp -s "$MNT/win/mutex/$name_old" "$T/old.pb.gz"
check "the earlier profiles are still there" cmp -s "$MNT/api/cpu/env=prod,region=eu/$NAME_EU" "$FIXTURES/cpu_002.pb.gz"

stop_server
check "unmounted after SIGTERM" sh -c "! mountpoint -q '$MNT'"
t_done
