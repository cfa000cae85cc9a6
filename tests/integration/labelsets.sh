#!/usr/bin/env bash
# tests/integration/labelsets.sh — label sets at Kubernetes scale (issue
# 21): one label set per pod, and no look-up by label set, pair or key
# scans them all.  A store gets two services, "small" with 200 label sets
# and "big" with 2,000 (pod=pNNNNNN,region=eu|us|ap, one profile each,
# through the store API: tests/tools/labelsets.c), and through the real
# mount and HTTP:
#   - listings, find, stat, xattr-free answers and HTTP lists, merges,
#     label keys and values give exact answers;
#   - `ls -l` of the type directory costs per entry at 2,000 sets within
#     3x of its cost at 200 sets, and so does a stat of each of 200 label
#     directories (merge tree too).  Before, every stat listed every label
#     set of the service: 10x the sets made each entry ~10x dearer.
. "$TESTS_DIR/lib.sh"
t_init
: "${LABELSETS:?LABELSETS must point to the labelsets tool}"

RATIO=${LABELSETS_RATIO:-3}
MNT=$T/mnt
BASE=1699833600 # 2023-11-13T00:00:00Z, a Monday long past
python3 "$TESTS_DIR/../bench/gen_profiles.py" "$FIXTURES" "$T/gen" 24 $BASE 3600 ||
    { fail "cannot generate profiles"; t_done; }
mkdir -p "$T/data"
"$LABELSETS" "$T/data" small 200 200 "$T"/gen/*.pb.gz >/dev/null ||
    fail "loading 200 label sets"
"$LABELSETS" "$T/data" big 2000 2000 "$T"/gen/*.pb.gz >/dev/null ||
    fail "loading 2,000 label sets"

start_server --mount "$MNT" --quiet || t_done
F=$(utc $BASE) TO=$(utc $((BASE + 86400)))

# ---- answers -----------------------------------------------------------------
assert_eq "label dirs of big" 2000 "$(ls "$MNT/big/cpu" | wc -l)"
# listed by offset (fs/listing.h): "." and ".." are there too
assert_eq "dot entries listed" ". .. big diff merge small" \
    "$(ls -fa "$MNT" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "and in a big directory" 2002 "$(ls -fa "$MNT/big/cpu" | wc -l)"
assert_eq "profiles found under big" 2000 \
    "$(find "$MNT/big" -name '*.pb.gz' | wc -l)"
assert_eq "one profile in a pod's directory" 1 \
    "$(ls "$MNT/big/cpu/pod=p001234,region=us" | wc -l)"
check "a stored label dir stats" stat -t "$MNT/big/cpu/pod=p000006,region=eu" >/dev/null
check "another key order names it too" \
    test -d "$MNT/big/cpu/region=eu,pod=p000006"
check "a set that is not stored does not exist" \
    test ! -e "$MNT/big/cpu/pod=p000006,region=us"
check "nor a pod's pair alone in the stored tree" test ! -e "$MNT/big/cpu/pod=p000006"
check "the merge tree has the pod's filter" test -d "$MNT/merge/big/cpu/pod=p000006"
check "and region's" test -d "$MNT/merge/big/cpu/region=ap"
check "but no filter that no set matches" \
    test ! -e "$MNT/merge/big/cpu/pod=p000006,region=us"
# ACLs and security labels are not supported (ENOTSUP, which `ls -l`
# remembers for the device, instead of asking them of every entry)
xerr() { python3 -c 'import os, sys
try: os.getxattr(sys.argv[1], sys.argv[2]); print("set")
except OSError as e: print(e.errno)' "$1" "$2"; }
assert_eq "ACL of a label dir: not supported" 95 \
    "$(xerr "$MNT/big/cpu/pod=p000006,region=eu" system.posix_acl_access)"
assert_eq "security label: not supported" 95 \
    "$(xerr "$MNT/big/cpu/pod=p000006,region=eu" security.selinux)"
assert_eq "another user.* attribute: none (ENODATA)" 61 \
    "$(xerr "$MNT/big/cpu/pod=p000006,region=eu" user.other)"
assert_eq "a filter dir of the merge tree lists no range (all long past)" 0 \
    "$(ls "$MNT/merge/big/cpu/pod=p000006" | wc -l)"

http GET "$URL/api/0/profiles?service=big&type=cpu&from=$F&to=$TO&labels=pod=p000007"
assert_eq "HTTP list of one pod" "200 1 pod=p000007,region=us" \
    "$HTTP_STATUS $(json 'len(j["body"])') $(json '",".join(l["key"]+"="+l["value"] for l in j["body"][0]["labels"])')"
http GET "$URL/api/0/profiles?service=big&type=cpu&from=$F&to=$TO&labels=region=eu"
assert_eq "HTTP list of a region" "200 667" "$HTTP_STATUS $(json 'len(j["body"])')"
http GET "$URL/api/0/profiles?service=big&type=cpu&from=$F&to=$TO&labels=region=eu,pod=p000007"
assert_eq "HTTP list of a filter no set matches" 404 "$HTTP_STATUS"
for q in "labels=pod=p000007" "labels=region=eu" ""; do
    http GET "$URL/api/0/profiles/merge?service=big&type=cpu&from=$F&to=$TO&$q" -o "$T/m.pb.gz"
    assert_eq "HTTP merge ${q:-of everything}" 200 "$HTTP_STATUS"
done
http GET "$URL/api/0/labels?service=big&type=cpu"
assert_eq "label keys" "200 ['pod', 'region']" "$HTTP_STATUS $(json 'j["body"]')"
http GET "$URL/api/0/labels/region/values?service=big&type=cpu&from=$F&to=$TO"
assert_eq "values of region" "200 ['ap', 'eu', 'us']" "$HTTP_STATUS $(json 'j["body"]')"
http GET "$URL/api/0/labels/pod/values?service=big&type=cpu"
assert_eq "values of pod" "200 2000 p000000 p001999" \
    "$HTTP_STATUS $(json 'len(j["body"])') $(json 'j["body"][0]') $(json 'j["body"][-1]')"
# gen's profile i is at BASE + i hours and pod i has the bytes of i % 24
http GET "$URL/api/0/labels/pod/values?service=big&type=cpu&from=$(utc $((BASE + 3600)))&to=$(utc $((BASE + 3600)))"
assert_eq "values of pod in one hour" "200 84 p000001 p001993" \
    "$HTTP_STATUS $(json 'len(j["body"])') $(json 'j["body"][0]') $(json 'j["body"][-1]')"
http GET "$URL/api/0/labels/zone/values?service=big&type=cpu"
assert_eq "values of an unknown key" 404 "$HTTP_STATUS"
http GET "$URL/api/0/labels?service=big"
assert_eq "label keys without a type" 400 "$HTTP_STATUS"
http GET "$URL/api/0/labels/region/values?service=big&type=cpu&from=$TO&to=$F"
assert_eq "values over a backwards range" 400 "$HTTP_STATUS"

# ---- costs per entry -----------------------------------------------------------
# ms_of CMD...: the best of 3 runs in ms, each after the kernel's entry and
# attribute caches (1 s) expired, so that every run asks the mount.
ms_of() {
    local best=999999 r t0 ms
    for r in 1 2 3; do
        sleep 1.1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        [ "$ms" -lt "$best" ] && best=$ms
    done
    echo "$best"
}
dirs() { # dirs SERVICE SETS: 200 of its label dirs, stored and merge tree
    local i p r=(eu us ap)
    for ((i = 0; i < 200; i++)); do
        p=$((i * ($2 / 200)))
        printf '%s/%s/cpu/pod=p%06d,region=%s\n' "$MNT" "$1" $p "${r[p % 3]}"
        printf '%s/merge/%s/cpu/pod=p%06d\n' "$MNT" "$1" $p
    done >"$T/dirs.$1"
}
dirs small 200
dirs big 2000
check "the small dirs exist" xargs -a "$T/dirs.small" stat -t >/dev/null
check "the big dirs exist" xargs -a "$T/dirs.big" stat -t >/dev/null
ls_small=$(ms_of ls -l "$MNT/small/cpu")
ls_big=$(ms_of ls -l "$MNT/big/cpu")
st_small=$(ms_of xargs -a "$T/dirs.small" stat -t)
st_big=$(ms_of xargs -a "$T/dirs.big" stat -t)
# per entry, in microseconds: ls lists 200 and 2,000; stat runs 400 each
per_small=$((ls_small * 1000 / 200)) per_big=$((ls_big * 1000 / 2000))
echo "labelsets: ls -l 200 sets ${ls_small} ms (${per_small} us/entry)," \
     "2,000 sets ${ls_big} ms (${per_big} us/entry); 400 stats of dirs:" \
     "${st_small} ms at 200 sets, ${st_big} ms at 2,000 (load: $(cut -d' ' -f1-3 /proc/loadavg))"
check "ls -l per entry at 2,000 sets within ${RATIO}x of 200 sets" \
    test "$per_big" -le $((RATIO * (per_small + 20)))
check "a stat at 2,000 sets within ${RATIO}x of one at 200 sets" \
    test "$st_big" -le $((RATIO * (st_small + 5)))

stop_server
t_done
