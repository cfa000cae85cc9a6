#!/usr/bin/env bash
# tests/integration/ingest_wal.sh — sustained durable ingest keeps the WAL
# bounded and loses nothing.
#
# 8 keep-alive clients POST WAL_INGESTS (default 12000) CPU profiles while
# another client merges the service now and then (readers holding WAL
# snapshots), and the size of the store's -wal file is sampled every 20 ms.
# SQLite's automatic checkpoint is off in the writer (store/sqlite/local_writer.c):
# the checkpoint thread copies the WAL back and the writer restarts it, so
# although the run writes several times WAL_MAX_MB of frames, the file must
# never exceed WAL_MAX_MB (default 48; it restarts at ~33 MB).  Then: every acknowledged id is
# listed, nothing else is, the server stops cleanly, its last connection
# removes the WAL, and the database passes PRAGMA integrity_check.
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

N=${WAL_INGESTS:-12000}
WAL_MAX_MB=${WAL_MAX_MB:-48}
BODY=$T/cpu.pb.gz
NOW=$(date +%s)
retime "$FIXTURES/cpu_001.pb.gz" "$BODY" "$NOW"

start_server --quiet || t_done
DB=$(db_file) || { fail "no database file"; t_done; }

# The WAL sampler: the largest size seen, in bytes, in $T/wal.max.
( max=0
  while kill -0 "$SERVER_PID" 2>/dev/null && [ ! -f "$T/clients.done" ]; do
    s=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)
    [ "$s" -gt "$max" ] && { max=$s; echo "$max" >"$T/wal.max"; }
    sleep 0.02
  done ) &
SAMPLER=$!

python3 - "$URL" "$BODY" "$N" "$NOW" >"$T/clients.out" <<'EOF' || fail "ingest clients failed: $(tail -n 5 "$T/clients.out")"
import http.client, json, sys, threading, time, urllib.parse
url, body_file, n, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host = urllib.parse.urlparse(url).netloc
body = open(body_file, "rb").read()
lock = threading.Lock()
left = [n]
ids, errors = [], []
done = threading.Event()

def ingester():
    c = http.client.HTTPConnection(host, timeout=60)
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
            i = left[0]
        # one label per request: ingest is idempotent, the same body with
        # the same labels would be one profile
        c.request("POST", "/api/0/profiles?service=walsvc&type=cpu&labels=n%%3D%d" % i, body)
        r = c.getresponse()
        data = r.read()
        with lock:
            if r.status == 200:
                ids.append(json.loads(data)["body"]["id"])
            else:
                errors.append("%d %s" % (r.status, data[:200]))

def merger():
    c = http.client.HTTPConnection(host, timeout=60)
    q = urllib.parse.urlencode({"service": "walsvc", "type": "cpu", "limit": 200,
        "from": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + 60))})
    merges = 0
    while not done.wait(0.2):
        c.request("GET", "/api/0/profiles/merge?" + q)
        r = c.getresponse()
        r.read()
        if r.status not in (200, 404):
            errors.append("merge: %d" % r.status)
        merges += 1
    print("merges", merges)

t0 = time.time()
m = threading.Thread(target=merger)
m.start()
ts = [threading.Thread(target=ingester) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
done.set()
m.join()
print("acknowledged", len(ids), "in %.1f s" % (time.time() - t0))
for e in errors[:5]: print("error", e)
open(body_file + ".ids", "w").write("\n".join(sorted(ids)) + "\n")
sys.exit(1 if errors else 0)
EOF
touch "$T/clients.done"
wait "$SAMPLER"
cat "$T/clients.out"

sort "$BODY.ids" | sed '/^$/d' >"$T/acked"
assert_eq "acknowledged ingests" "$N" "$(wc -l <"$T/acked")"
http GET "$URL/api/0/profiles?service=walsvc&type=cpu&from=$(utc $((NOW - 60)))&to=$(utc $((NOW + 60)))&limit=$((N + 100))"
assert_eq "list status" 200 "$HTTP_STATUS"
json '"\n".join(sorted(m["id"] for m in j["body"]))' >"$T/listed"
check "the listed ids are exactly the acknowledged ones" cmp -s "$T/acked" "$T/listed"

max=$(cat "$T/wal.max" 2>/dev/null || echo 0)
echo "ingest_wal: largest WAL file $((max / 1048576)) MB (limit $WAL_MAX_MB MB) over $N ingests"
check "the WAL stayed under $WAL_MAX_MB MB ($max bytes)" [ "$max" -le $((WAL_MAX_MB * 1048576)) ]
check "the WAL was in use (sampled $max bytes)" [ "$max" -gt 0 ]

stop_server TERM
check "no WAL left after a clean stop" [ ! -e "$DB-wal" ]
assert_eq "integrity_check after the run" ok "$(db_integrity "$DB")"
t_done
