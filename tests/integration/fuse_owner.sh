#!/usr/bin/env bash
# fuse_owner.sh — what a write through the mount may remove is only what
# that write created (issue 22, point 1).  Ingest is idempotent, so a file
# written through the mount whose bytes an agent already pushed answers
# with the agent's profile; before the fix the mount took it for its own
# and deleted it on a rewrite, a failed second ingest or an rm.  On the
# three stores the mount can sit on (the local one, S3 through radosgw,
# `mount --remote` of a profefs node), with the review's commands:
#   - an agent POSTs cpu_000; `{ cat cpu_000; sleep .3; printf x; } > copy`
#     through the mount leaves the agent's profile (GET 200, same bytes);
#   - an agent POSTs cpu_001; `cp cpu_001 mine; rm mine` removes the name
#     only: rm succeeds, mine is gone, the agent's profile stays;
#   - what the mount did create still goes with its rm and its rewrite;
#   - the HTTP answer's X-Profefs-Ingest says new for a stored profile,
#     existing for a repeat (how `mount --remote` tells the two apart).
. "$TESTS_DIR/lib.sh"
t_init

# get_status ID URL: the HTTP status of GET of profile ID.
get_status() {
    curl -s -o "$T/got" -w '%{http_code}' --max-time 30 "$2/api/0/profiles/$(esc "$1")"
}
# post FILE URL SERVICE LABELS: POSTs as an agent does; sets PID_ and
# NEW_ (the X-Profefs-Ingest header).
post() {
    curl -s --max-time 30 -D "$T/post.hdr" --data-binary @"$1" \
        "$2/api/0/profiles?service=$3&type=cpu&labels=$4" >"$T/post.json"
    PID_=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"]["id"])' "$T/post.json")
    NEW_=$(tr -d '\r' <"$T/post.hdr" | sed -n 's/^[Xx]-[Pp]rofefs-[Ii]ngest: //p')
}
# count URL SERVICE: profiles of SERVICE/cpu listed over HTTP.
count() {
    http GET "$1/api/0/profiles?service=$2&type=cpu&from=0&to=9999999999"
    if [ "$HTTP_STATUS" = 404 ]; then echo 0; else json 'len(j["body"])'; fi
}

# cases WHAT MNT URL SERVICE LOG: the review's two cases and the controls,
# through mount MNT, the agent posting to URL.
cases() {
    local what=$1 mnt=$2 url=$3 svc=$4 log=$5 d
    d="$mnt/$svc/cpu/k=v"
    mkdir -p "$d"
    post "$FIXTURES/cpu_000.pb.gz" "$url" "$svc" "k=v"; local a=$PID_
    assert_eq "$what: the agent's first POST is new" new "$NEW_"
    post "$FIXTURES/cpu_000.pb.gz" "$url" "$svc" "k=v"
    assert_eq "$what: a repeat answers with the same id" "$a" "$PID_"
    assert_eq "$what: a repeat is not new" existing "$NEW_"

    # 1. same bytes through the mount, then more bytes after a close
    { cat "$FIXTURES/cpu_000.pb.gz"; sleep .3; printf x; } > "$d/copy.pb.gz"
    assert_eq "$what: the agent's profile survives a rewrite through the mount" 200 "$(get_status "$a" "$url")"
    check "$what: with its bytes" cmp -s "$T/got" "$FIXTURES/cpu_000.pb.gz"
    check "$what: nothing deleted is logged" \
        sh -c "! grep -q 'deleted.*$(echo "$a" | sed 's/[.[\*^$/]/\\&/g')' '$log'"

    # 2. cp of bytes an agent pushed, then rm: the name goes, not the profile
    post "$FIXTURES/cpu_001.pb.gz" "$url" "$svc" "k=v"; local b=$PID_
    check "$what: cp of the agent's bytes" cp "$FIXTURES/cpu_001.pb.gz" "$d/mine.pb.gz"
    check "$what: the copy is listed under the name it was written as" test -f "$d/mine.pb.gz"
    out=$(rm "$d/mine.pb.gz" 2>&1); rc=$?
    assert_eq "$what: rm of the copy succeeds" "0 " "$rc $out"
    check "$what: its name is gone" test ! -e "$d/mine.pb.gz"
    assert_eq "$what: the agent's upload survives the rm" 200 "$(get_status "$b" "$url")"
    check "$what: with its bytes" cmp -s "$T/got" "$FIXTURES/cpu_001.pb.gz"
    assert_contains "$what: the rm is logged as keeping the profile" "$(cat "$log")" "kept $b"

    # 3. controls: what the mount created goes with its rm and rewrite
    check "$what: cp of new bytes" cp "$FIXTURES/cpu_002.pb.gz" "$d/own.pb.gz"
    assert_eq "$what: 3 profiles" 3 "$(count "$url" "$svc")"
    check "$what: rm of the mount's own file" rm "$d/own.pb.gz"
    assert_eq "$what: its profile is deleted" 2 "$(count "$url" "$svc")"
    { cat "$FIXTURES/cpu_003.pb.gz"; sleep .3; printf x; } > "$d/own2.pb.gz"
    assert_eq "$what: a rewrite to garbage deletes the mount's own prefix" 2 "$(count "$url" "$svc")"
}

# ---- the local store -------------------------------------------------------------
LMNT=$T/lmnt
start_server --mount "$LMNT" || t_done
cases local "$LMNT" "$URL" loc "$SERVER_LOG"

# ---- mount --remote of that node ----------------------------------------------------
RMNT=$T/rmnt
mount_remote "$RMNT" "$URL" || t_done
cases remote "$RMNT" "$URL" rem "$T/remote.$MOUNT_N.log"
kill -TERM "$RPID"; wait "$RPID" 2>/dev/null
stop_server

# ---- S3 (radosgw): the key is the same for the same bytes ----------------------------
s3_start
SMNT=$T/smnt
start_server --mount "$SMNT" || t_done
cases s3 "$SMNT" "$URL" s3s "$SERVER_LOG"
stop_server

t_done
