#!/bin/bash
# tests/tools/rgw.sh — a real, throw-away S3 server for tests and benchmarks:
# a single-node Ceph cluster (one ceph-mon, one memstore ceph-osd, radosgw)
# run as plain processes with all state under DIR, listening on 127.0.0.1 only.
#
#   rgw.sh start DIR   starts it (free ports), creates an S3 user and a bucket,
#                      writes DIR/env (shell `export` lines: AWS_ACCESS_KEY_ID,
#                      AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3,
#                      PROFEFS_S3_BUCKET) and prints the endpoint URL on stdout.
#   rgw.sh stop DIR    stops exactly the processes `start DIR` started (by the
#                      pids in DIR/run/, and only while their command line still
#                      names DIR/ceph.conf, so a recycled pid is never hit).
#                      Never kills by name: other radosgw may be running.
#   rgw.sh stop DIR --purge   also removes what start created under DIR.
#
# The settings that matter (why each is here):
#   - cephx off between Ceph daemons (S3 SigV4 in radosgw is still enforced);
#     with auth none radosgw needs `ms mon client mode = crc` or never serves;
#   - `paxos propose interval = 0.1`: start-up in ~3 s instead of ~16 s;
#   - beast `tcp_nodelay=1`: without it every GET waits 44 ms (Nagle);
#   - a single OSD: pool size 1, few PGs, no autoscaler (there is no mgr);
#   - `mon data avail crit = 0`: a fairly full host disk must not stop the mon;
#   - memstore keeps objects in the OSD's RAM: nothing survives a stop.
#   - RGW 16 compares If-Match without quotes; only path-style addressing.
#
# Env: RGW_ACCESS_KEY (profefs), RGW_SECRET_KEY (profefs-secret), RGW_BUCKET
# (profiles), RGW_PORT / MON_PORT (default: free ports), RGW_START_TIMEOUT
# (120 s), RGW_MEMSTORE_BYTES (4 GiB), RGW_EXTRA_CONF (appended to ceph.conf;
# begin it with a [section] line).
# Packages (Debian 12, scripts/setup installs them):
#   ceph-mon ceph-osd radosgw ceph-common curl uuid-runtime python3
set -euo pipefail

usage() { echo "usage: $0 start DIR | stop DIR [--purge]" >&2; exit 2; }
[ $# -ge 2 ] && [ -n "$2" ] || usage
CMD=$1
if [ "$CMD" = stop ] && [ ! -d "$2" ]; then echo "rgw: $2: no such directory" >&2; exit 0; fi
mkdir -p "$2"
D=$(cd "$2" && pwd)
CONF="$D/ceph.conf"
CREATED=(mon osd rgw run log crash monmap ceph.conf endpoint env keyring)

log() { echo "rgw: $*" >&2; }
# a pid file is "ours and alive" if the process exists and its command line names our ceph.conf
ours_pid() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "-c $CONF "; }
ours() { [ -s "$1" ] && ours_pid "$(cat "$1")"; }

stop() {
  local rc=0 n f p i
  for n in rgw osd mon; do   # reverse start order: the osd can still tell the mon it goes
    f="$D/run/$n.pid"
    [ -s "$f" ] || continue
    p=$(cat "$f")
    if ours_pid "$p"; then
      kill -TERM "$p" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do ours_pid "$p" || break; sleep 0.2; done
      if ours_pid "$p"; then log "$n (pid $p) did not exit, SIGKILL"; kill -KILL "$p" 2>/dev/null || true; sleep 0.5; fi
      if ours_pid "$p"; then log "$n (pid $p) still alive"; rc=1; continue; fi
      log "stopped $n (pid $p)"
    fi
    rm -f "$f"
  done
  if [ "${1:-}" = --purge ] && [ $rc = 0 ]; then
    for n in "${CREATED[@]}"; do rm -rf "${D:?}/$n"; done
  fi
  return $rc
}

if [ "$CMD" = stop ]; then stop "${3:-}"; exit $?; fi
[ "$CMD" = start ] || usage

ACCESS=${RGW_ACCESS_KEY:-profefs}
SECRET=${RGW_SECRET_KEY:-profefs-secret}
BUCKET=${RGW_BUCKET:-profiles}
TMO=${RGW_START_TIMEOUT:-120}
T0=$(date +%s%N)

elapsed() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf "%d.%03d" $((ms / 1000)) $((ms % 1000)); }
die() {
  echo "rgw: ERROR: $*" >&2
  for f in mon.a osd.0 client.rgw; do
    [ -f "$D/log/$f.log" ] && { echo "--- tail $D/log/$f.log" >&2; tail -n 15 "$D/log/$f.log" >&2; }
  done
  stop >/dev/null 2>&1 || true
  exit 1
}
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3curl() { # s3curl METHOD PATH [curl args...]: a SigV4-signed request
  local m=$1 p=$2; shift 2
  curl -s -m 30 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" \
       -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$m" "$@" "$EP$p"; }

for t in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool uuidgen curl python3; do
  command -v "$t" >/dev/null || die "$t not installed (scripts/setup installs ceph-mon ceph-osd radosgw ceph-common uuid-runtime)"
done

# Already running and answering: keep it (its data too).
if ours "$D/run/mon.pid" && ours "$D/run/osd.pid" && ours "$D/run/rgw.pid" && [ -s "$D/endpoint" ] \
   && [ -s "$D/env" ] && [ "$(http_code "$(cat "$D/endpoint")/")" = 200 ]; then
  log "already running"; cat "$D/endpoint"; exit 0
fi

# Clean slate: only our own pids, only what start creates.
stop >/dev/null 2>&1 || true
for n in "${CREATED[@]}"; do rm -rf "${D:?}/$n"; done
mkdir -p "$D/mon/a" "$D/osd/0" "$D/rgw" "$D/run" "$D/log" "$D/crash"

MON_PORT=${MON_PORT:-$(free_port)}
RGW_PORT=${RGW_PORT:-$(free_port)}
[ "$(http_code "http://127.0.0.1:$RGW_PORT/")" = 000 ] || die "port $RGW_PORT already in use"
EP="http://127.0.0.1:$RGW_PORT"
FSID=$(uuidgen)

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $D/keyring
run dir = $D/run
crash dir = $D/crash
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
mon cluster log to file = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon allow pool delete = true
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = $D/mon/\$id
paxos propose interval = 0.1
admin socket = $D/run/\$name.asok
[osd]
osd data = $D/osd/\$id
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-4294967296}
admin socket = $D/run/\$name.asok
[client.rgw]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/rgw
rgw thread pool size = 64
admin socket = $D/run/\$name.asok
EOF
[ -z "${RGW_EXTRA_CONF:-}" ] || printf '%s\n' "$RGW_EXTRA_CONF" >>"$CONF"
export CEPH_CONF="$CONF"

# start NAME COMMAND...: foreground daemon, detached from our session, fds closed.
start() { local name=$1; shift
  setsid "$@" </dev/null >>"$D/log/$name.out" 2>&1 &
  echo $! >"$D/run/$name.pid"; }
wait_for() { local what=$1 pidf=$2 i; shift 2
  for ((i = 0; i < TMO * 5; i++)); do
    "$@" && return 0
    ours "$pidf" || die "$what: process died"
    sleep 0.2
  done; die "$what: not ready after ${TMO}s"; }

monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" >"$D/log/mon.mkfs.out" 2>&1 || die "mon mkfs failed"
start mon ceph-mon -c "$CONF" -f -i a
wait_for ceph-mon "$D/run/mon.pid" ceph -c "$CONF" --connect-timeout 5 mon stat >/dev/null 2>&1
log "mon up on 127.0.0.1:$MON_PORT ($(elapsed) s)"

OSD_UUID=$(uuidgen)
OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
[ "$OSD_ID" = 0 ] || die "unexpected osd id '$OSD_ID'"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd.mkfs.out" 2>&1 || die "osd mkfs failed"
start osd ceph-osd -c "$CONF" -f -i 0
osd_up() { ceph -c "$CONF" --connect-timeout 5 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_for ceph-osd "$D/run/osd.pid" osd_up
log "osd.0 up ($(elapsed) s)"

start rgw radosgw -c "$CONF" -f -n client.rgw
rgw_up() { [ "$(http_code "$EP/")" = 200 ]; }
wait_for radosgw "$D/run/rgw.pid" rgw_up
log "radosgw answering on $EP ($(elapsed) s)"

timeout 60 radosgw-admin -c "$CONF" -n client.admin user create --uid="$ACCESS" --display-name="$ACCESS" \
  --access-key="$ACCESS" --secret-key="$SECRET" >"$D/log/user-create.out" 2>&1 \
  || die "radosgw-admin user create failed: $(tail -3 "$D/log/user-create.out")"
code=""
for ((i = 0; i < 50; i++)); do   # a new user's key may take a moment to reach radosgw
  code=$(s3curl PUT "/$BUCKET" -o /dev/null -w '%{http_code}' || true)
  [ "$code" = 200 ] && break; sleep 0.2
done
[ "$code" = 200 ] || die "create bucket $BUCKET: HTTP $code"

echo "$EP" >"$D/endpoint"
cat >"$D/env" <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=$EP
export PROFEFS_S3_BUCKET=$BUCKET
EOF
log "S3 ready: user $ACCESS, bucket $BUCKET ($(elapsed) s); stop with: $0 stop $D"
echo "$EP"
