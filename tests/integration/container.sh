#!/usr/bin/env bash
# container.sh — the image from the Containerfile, built and run with podman
# the way profefe's one-liner is used (`run -d -p 10100:10100 -v VOL:/data`):
#   - scripts/image builds it (base image made once by debootstrap, cached);
#   - the image's metadata: user, port, volume, entrypoint, command, health
#     check; no compiler in the runtime stage;
#   - a container with a published port (127.0.0.1) and a named volume: runs
#     as uid 10100 with profefs as PID 1, is healthy, takes profiles over
#     HTTP, and `go tool pprof` on the host opens its merge (equal to
#     `go tool pprof -proto` of the same files);
#   - `podman stop` takes seconds (under 10 s; SIGKILL would come at 30 s),
#     exit status 0, the log shows the clean shutdown, the volume's database
#     is sound and has no WAL left;
#   - a new container (read-only root, as in the Kubernetes examples) on the
#     same volume finds every profile with the same bytes;
#   - the FUSE view in a container (--device /dev/fuse --cap-add SYS_ADMIN)
#     as root and as the image's user through fusermount3;
#   - S3 mode: two containers over one radosgw bucket (tests/tools/rgw.sh),
#     a profile written through one is listed, read and merged through the
#     other.  They use --network host to reach radosgw on 127.0.0.1.
# Needs root (rootful podman, as in CI).  Containers, the volume and radosgw
# are this test's own (named after its pid) and removed at the end.
. "$TESTS_DIR/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "container.sh: needs root for podman; skipped"; exit 77; fi
t_init
REPO=$(cd "$TESTS_DIR/.." && pwd)
export CONTAINERS_CONF="$REPO/deploy/podman/containers.conf"
export HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"
IMG=localhost/profefs:test
P=profefs-test-$$
VOL=$P-data
C_NAMES=()
RGW_DIR=""
c_cleanup() {
    local n
    for n in "${C_NAMES[@]:-}"; do [ -n "$n" ] && podman rm -f -v -t 0 "$n" >/dev/null 2>&1; done
    podman volume rm -f "$VOL" >/dev/null 2>&1
    [ -n "$RGW_DIR" ] && bash "$TESTS_DIR/tools/rgw.sh" stop "$RGW_DIR" >/dev/null 2>&1
}
trap 'c_cleanup; t_cleanup' EXIT

# crun NAME ARGS...: podman run -d --name NAME ARGS... (removed at the end).
crun() {
    local n=$1; shift
    C_NAMES+=("$n")
    RUN_T0=$(date +%s%N)
    podman run -d --name "$n" "$@" >/dev/null 2>>"$T/podman.err" ||
        { fail "podman run $n failed: $(tail -n 3 "$T/podman.err")"; return 1; }
}

# cup NAME URL: waits for URL/api/0/version; UP_MS = ms since the last crun.
cup() {
    if wait_http "$2/api/0/version" 30; then
        ok; UP_MS=$(( ($(date +%s%N) - RUN_T0) / 1000000 ))
    else
        fail "$1 did not answer: $(podman logs "$1" 2>&1 | tail -n 5)"; UP_MS=-1
    fi
}

# cstop NAME: podman stop (SIGTERM, SIGKILL after 30 s); checks it took under
# 10 s, exit status 0 and the clean-shutdown lines of the log (kept in $T).
STOP_MS=()
cstop() {
    local n=$1 t0 ms
    t0=$(date +%s%N)
    podman stop -t 30 "$n" >/dev/null 2>>"$T/podman.err"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    STOP_MS+=("$ms")
    check "$n: podman stop took $ms ms (< 10000; SIGKILL comes at 30000)" test "$ms" -lt 10000
    assert_eq "$n: exit status after SIGTERM" 0 "$(podman inspect --format '{{.State.ExitCode}}' "$n" 2>/dev/null)"
    podman logs "$n" >"$T/$n.log" 2>&1
    T_LOGS+=("$T/$n.log")
    check "$n: logged the SIGTERM" grep -q 'Terminated received, shutting down' "$T/$n.log"
    check "$n: logged a clean stop" grep -q '^profefs: stopped' "$T/$n.log"
}

# same_merge DESC WANT GOT: canonical texts (tests/canon.py) equal, not empty.
same_merge() {
    local a b
    a=$(canon "$2" 2>&1); b=$(canon "$3" 2>&1)
    check "$1: canonical text not empty" test -n "$a"
    assert_eq "$1" "$a" "$b"
}

# list_ids URL SERVICE TYPE: the sorted ids a list query returns.
list_ids() {
    http GET "$1/api/0/profiles?service=$2&type=$3&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
    json '" ".join(sorted(p["id"] for p in j["body"]))' 2>/dev/null
}

# ---- build --------------------------------------------------------------------------------
t0=$SECONDS
if ! "$REPO/scripts/image" "$IMG" >"$T/image.out" 2>"$T/build.log"; then
    fail "scripts/image failed: $(tail -n 20 "$T/build.log")"
    t_done
fi
echo "container.sh: image built in $((SECONDS - t0)) s"
podman image inspect "$IMG" >"$T/body"
assert_eq "image user" "profefs" "$(json 'j[0]["Config"]["User"]')"
assert_eq "image port" "['10100/tcp']" "$(json 'list(j[0]["Config"]["ExposedPorts"])')"
assert_eq "image volume" "['/data']" "$(json 'list(j[0]["Config"]["Volumes"])')"
assert_eq "image entrypoint" "['profefs']" "$(json 'j[0]["Config"]["Entrypoint"]')"
assert_eq "image command" "['serve', '--data', '/data', '--addr', '0.0.0.0:10100']" "$(json 'j[0]["Config"]["Cmd"]')"
assert_eq "image stop signal" SIGTERM "$(json 'j[0]["Config"].get("StopSignal")')"
assert_contains "image health check" "$(json '(j[0].get("Healthcheck") or j[0]["Config"].get("Healthcheck") or {}).get("Test")')" "http://127.0.0.1:10100/api/0/version"
SIZE_MB=$(json 'j[0]["Size"] // 1000000')
echo "container.sh: image size $SIZE_MB MB"
out=$(podman run --rm --entrypoint sh "$IMG" -c 'command -v gcc cc meson || echo none' 2>>"$T/podman.err")
assert_eq "no compiler in the runtime image" none "$out"

# ---- the one-liner: published port, named volume ----------------------------------------------
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
crun "$P-a" -p "127.0.0.1:$PORT:10100" -v "$VOL:/data" "$IMG"
cup "$P-a" "$URL"
echo "container.sh: podman run to the first HTTP answer: $UP_MS ms"
http GET "$URL/api/0/version"
assert_eq "version over the published port" 200 "$HTTP_STATUS"
assert_contains "the image's version is the source's" "$("$PROFEFS" version)" "profefs $(json 'j["body"]["version"]') "
# (-dirty aside: the tree may change while the test runs)
c=$(json 'j["body"]["commit"]')
want=$(git -C "$REPO" describe --always --dirty 2>/dev/null)
assert_eq "the image's commit is the source's ($want), not unknown" "${want%-dirty}" "${c%-dirty}"
assert_eq "PID 1 is profefs" profefs "$(podman exec "$P-a" cat /proc/1/comm 2>>"$T/podman.err")"
assert_eq "runs as uid 10100" 10100 "$(podman exec "$P-a" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status' 2>>"$T/podman.err")"
check "podman healthcheck run: healthy" podman healthcheck run "$P-a"

declare -a CPU_IDS
for k in 0 1 2 3 4; do
    CPU_IDS[$k]=$(ingest "$FIXTURES/cpu_00$k.pb.gz" ctr cpu "host=h$((k % 2))")
done
HEAP_IDS=()
for k in 000 005 010; do HEAP_IDS+=("$(ingest "$FIXTURES/heap_$k.pb.gz" ctr heap)"); done
check "8 profiles ingested into the container" test -n "${CPU_IDS[4]}" -a -n "${HEAP_IDS[2]}"

# The fixtures' time_nanos: cpu_000..cpu_004 are 1795556966..1795556970.
MERGE="$URL/api/0/profiles/merge?service=ctr&type=cpu&from=$(utc 1795556966)&to=$(utc 1795556970)"
out=$(go tool pprof -top "$MERGE" 2>"$T/pprof.err"); rc=$?
assert_eq "go tool pprof -top of the container's merge URL exits 0" 0 "$rc"
assert_contains "pprof -top: cpu profile" "$out" "Type: cpu"
assert_contains "pprof -top: table" "$out" "flat%"
go tool pprof -proto "$FIXTURES"/cpu_00[0-4].pb.gz >"$T/want_cpu.pb.gz" 2>>"$T/pprof.err"
curl -s -o "$T/got_cpu.pb.gz" "$MERGE"
same_merge "the container's merge equals go tool pprof -proto" "$T/want_cpu.pb.gz" "$T/got_cpu.pb.gz"

cstop "$P-a"
MP=$(podman volume inspect --format '{{.Mountpoint}}' "$VOL" 2>>"$T/podman.err")
DB=$(db_file "$MP")
check "the volume holds the database" test -n "$DB"
[ -n "$DB" ] && assert_eq "its integrity after the stop" ok "$(db_integrity "$DB")"
[ -n "$DB" ] && assert_eq "owned by the image's user" 10100 "$(stat -c %u "$DB")"
check "a clean stop leaves no WAL file" test ! -e "$DB-wal"

# ---- a new container on the same volume, read-only root ---------------------------------------
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
crun "$P-b" --read-only -p "127.0.0.1:$PORT:10100" -v "$VOL:/data" "$IMG"
cup "$P-b" "$URL"
assert_eq "every cpu profile is there after the restart" \
    "$(printf '%s\n' "${CPU_IDS[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" "$(list_ids "$URL" ctr cpu)"
assert_eq "every heap profile is there after the restart" \
    "$(printf '%s\n' "${HEAP_IDS[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" "$(list_ids "$URL" ctr heap)"
for k in 0 1 2 3 4; do
    curl -s -o "$T/raw" "$URL/api/0/profiles/${CPU_IDS[$k]}"
    check "cpu_00$k: same bytes after the restart" cmp -s "$T/raw" "$FIXTURES/cpu_00$k.pb.gz"
done
id=$(ingest "$FIXTURES/goroutine_000.pb.gz" ctr goroutine)
check "ingest into a read-only-root container (writes go to /data)" test -n "$id"
cstop "$P-b"

# ---- FUSE view inside a container ---------------------------------------------------------
# Documented: --device /dev/fuse --cap-add SYS_ADMIN.  As the image's user,
# libfuse mounts through the setuid fusermount3 and needs /dev/fuse open to
# everyone (mode 0666, usual on hosts); where the host's is 0600, as here,
# `--user root` is the documented way, and the user path is run with the
# container's own device node opened up (chmod inside, then setpriv).
# fuse_round NAME EXEC_USER RUN_ARGS...: a container with the mount at /profiles,
# used from inside by EXEC_USER (the mount's owner: no allow_other).
fuse_round() {
    local n=$1 u=$2; shift 2
    PORT=$(free_port)
    URL="http://127.0.0.1:$PORT"
    crun "$n" --device /dev/fuse --cap-add SYS_ADMIN -p "127.0.0.1:$PORT:10100" -v "$VOL:/data" "$@" || return
    cup "$n" "$URL"
    local mnt
    mnt=$(podman exec "$n" sh -c 'for i in $(seq 50); do grep " /profiles fuse" /proc/mounts && exit; sleep 0.1; done' 2>>"$T/podman.err")
    assert_contains "$n: /profiles is a FUSE mount" "$mnt" "fuse.profefs"
    FUSE_MOUNT_LINE=$mnt
    out=$(podman exec --user "$u" "$n" find /profiles/ctr/cpu/ -name '*.pb.gz' 2>>"$T/podman.err" | grep -c '\.pb\.gz$')
    assert_eq "$n: find lists the 5 cpu profiles (in their label dirs)" 5 "$out"
    podman exec --user "$u" "$n" cat "/profiles/merge/ctr/cpu/$(utc 1795556966)..$(utc 1795556970)" >"$T/fuse_merge.pb.gz" 2>>"$T/podman.err"
    same_merge "$n: merge file read inside the container" "$T/want_cpu.pb.gz" "$T/fuse_merge.pb.gz"
    podman cp "$FIXTURES/block_000.pb.gz" "$n:/tmp/b.pb.gz" 2>>"$T/podman.err"
    check "$n: cp into the mount ingests" podman exec --user "$u" "$n" \
        sh -c "mkdir -p /profiles/ctr/block/round=$u && cp /tmp/b.pb.gz /profiles/ctr/block/round=$u/"
    cstop "$n"
}
fuse_round "$P-fr" root --user root "$IMG" serve --data /data --addr 0.0.0.0:10100 --mount /profiles
if [ "$(stat -c %a /dev/fuse)" = 666 ]; then
    fuse_round "$P-fu" profefs "$IMG" serve --data /data --addr 0.0.0.0:10100 --mount /profiles
else
    fuse_round "$P-fu" profefs --user root --entrypoint sh "$IMG" -c \
        'chmod 0666 /dev/fuse && exec setpriv --reuid=profefs --regid=profefs --init-groups profefs serve --data /data --addr 0.0.0.0:10100 --mount /profiles'
fi
assert_contains "as the image's user, the mount is uid 10100's" "${FUSE_MOUNT_LINE:-}" "user_id=10100"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
crun "$P-c" -p "127.0.0.1:$PORT:10100" -v "$VOL:/data" "$IMG"
cup "$P-c" "$URL"
assert_eq "both profiles copied into the mounts are stored" 2 "$(list_ids "$URL" ctr block | wc -w)"
cstop "$P-c"

# ---- S3 mode: two containers over one bucket -------------------------------------------------
check "the image's serve --help documents S3 mode" \
    sh -c "podman run --rm '$IMG' serve --help 2>/dev/null | grep -q 's3://'"
RGW_DIR="$T/rgw"
if ! bash "$TESTS_DIR/tools/rgw.sh" start "$RGW_DIR" >/dev/null 2>"$T/rgw.log"; then
    fail "radosgw did not start: $(tail -n 5 "$T/rgw.log")"
else
    . "$RGW_DIR/env"
    S3ENV=(-e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION -e AWS_ENDPOINT_URL_S3)
    PS1=$(free_port); PS2=$(free_port)
    crun "$P-s1" --network host "${S3ENV[@]}" "$IMG" serve --data "s3://$PROFEFS_S3_BUCKET/ctr" --addr "127.0.0.1:$PS1"
    crun "$P-s2" --network host "${S3ENV[@]}" "$IMG" serve --data "s3://$PROFEFS_S3_BUCKET/ctr" --addr "127.0.0.1:$PS2"
    cup "$P-s1" "http://127.0.0.1:$PS1"
    cup "$P-s2" "http://127.0.0.1:$PS2"
    URL="http://127.0.0.1:$PS1"
    S3_IDS=()
    for k in 0 1 2; do S3_IDS+=("$(ingest "$FIXTURES/cpu_00$k.pb.gz" s3ctr cpu "zone=z$k")"); done
    check "3 profiles written through the first container" test -n "${S3_IDS[2]}"
    URL="http://127.0.0.1:$PS2"
    assert_eq "the second container lists them" \
        "$(printf '%s\n' "${S3_IDS[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" "$(list_ids "$URL" s3ctr cpu)"
    curl -s -o "$T/raw" "$URL/api/0/profiles/$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "${S3_IDS[0]}")"
    check "the second container returns the first's bytes" cmp -s "$T/raw" "$FIXTURES/cpu_000.pb.gz"
    go tool pprof -proto "$FIXTURES"/cpu_00[0-2].pb.gz >"$T/want_s3.pb.gz" 2>>"$T/pprof.err"
    curl -s -o "$T/got_s3.pb.gz" "$URL/api/0/profiles/merge?service=s3ctr&type=cpu&from=$(utc 1795556966)&to=$(utc 1795556968)"
    same_merge "the second container's merge of the first's profiles" "$T/want_s3.pb.gz" "$T/got_s3.pb.gz"
    cstop "$P-s1"
    cstop "$P-s2"
fi

echo "container.sh: podman stop took ${STOP_MS[*]} ms"
t_done
