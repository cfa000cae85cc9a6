#!/usr/bin/env bash
# remote_profefe.sh — `profefs mount --remote` against a stand-in for a
# plain profefe server (a small Python server written here, following
# profefe's handlers: any method on /api/0/profiles/<id> is a GET, so there
# is no DELETE and HEAD has no Content-Length; a bad profile is a 500;
# nothing found is a 404).  Checks what the remote backend promises for
# such a server: reads with exact sizes, writes, merges, and rm failing
# with ENOTSUP (nothing deleted), mkdir kept locally.  Real profefe cannot
# run here (no network to fetch it), hence the stand-in.
. "$TESTS_DIR/lib.sh"
t_init

cat >"$T/fake_profefe.py" <<'EOF'
import calendar, gzip, json, os, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

B32 = "0123456789abcdefghijklmnopqrstuv"
profiles = {}   # id -> (service, type, labels list, created_at, bytes)
lock = threading.Lock()

def new_id():
    raw = int(time.time()).to_bytes(4, "big") + os.urandom(8)
    n = int.from_bytes(raw, "big") << 4          # 96 bits -> 100 bits
    return "".join(B32[(n >> (95 - 5 * i)) & 31] for i in range(20))

def labels_of(s):
    out = []
    for kv in filter(None, (s or "").split(",")):
        k, _, v = kv.partition("=")
        out.append({"key": urllib.parse.unquote(k.strip()), "value": urllib.parse.unquote(v.strip())})
    return out

def meta(pid):
    s, t, l, c, _ = profiles[pid]
    m = {"id": pid, "type": t, "service": s, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c))}
    if l:
        m["labels"] = l
    return m

def parse_time(v):
    return calendar.timegm(time.strptime(v, "%Y-%m-%dT%H:%M:%S"))

class H(BaseHTTPRequestHandler):
    def reply(self, code, obj=None, raw=None, length=True):
        body = raw if raw is not None else json.dumps(obj).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def err(self, code, msg):
        self.reply(code, {"code": code, "error": msg})

    def match(self, q):
        svc, typ = q.get("service", [""])[0], q.get("type", [""])[0]
        want = labels_of(q.get("labels", [""])[0])
        lo, hi = parse_time(q["from"][0]), parse_time(q["to"][0])
        ids = [i for i, p in profiles.items() if p[0] == svc and p[1] == typ and lo <= p[3] <= hi
               and all(l in p[2] for l in want)]
        return sorted(ids, key=lambda i: profiles[i][3])

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        with lock:
            if u.path == "/api/0/version":
                return self.reply(200, {"code": 200, "body": {"version": "fake", "commit": "x", "build_time": "x"}})
            if u.path == "/api/0/services":
                names = sorted({p[0] for p in profiles.values()})
                return self.reply(200, {"code": 200, "body": names}) if names else self.err(404, "nothing found")
            if u.path == "/api/0/profiles":
                ids = self.match(q)
                if not ids:
                    return self.err(404, "nothing found")
                return self.reply(200, {"code": 200, "body": [meta(i) for i in ids]})
            if u.path == "/api/0/profiles/merge":
                ids = self.match(q)
                if not ids:
                    return self.err(404, "nothing found")
                if len(ids) > 1:   # the stand-in cannot merge pprof
                    return self.err(500, "internal error")
                return self.reply(200, raw=profiles[ids[0]][4])
            if u.path.startswith("/api/0/profiles/"):
                pid = u.path[len("/api/0/profiles/"):].strip("/")
                if pid not in profiles:
                    return self.err(404, "nothing found")
                # Go's net/http answers HEAD of a big body without a length
                return self.reply(200, raw=profiles[pid][4], length=self.command != "HEAD")
        self.err(404, "nothing found")

    do_HEAD = do_GET
    do_DELETE = do_GET   # profefe routes every method on /profiles/<id> to the GET handler

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if u.path != "/api/0/profiles":
            return self.err(404, "nothing found")
        if not q.get("service") or not q.get("type"):
            return self.err(400, "bad request: missing service")
        try:
            gzip.decompress(data)
        except Exception:
            return self.err(500, "failed to create profile")
        with lock:
            pid = new_id()
            profiles[pid] = (q["service"][0], q["type"][0], labels_of(q.get("labels", [""])[0]),
                             int(time.time()), data)
            self.reply(200, {"code": 200, "body": meta(pid)})

    def log_message(self, fmt, *args):
        sys.stderr.write("fake %s %s\n" % (self.command, self.path))

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
python3 "$T/fake_profefe.py" "$PORT" 2>"$T/fake.log" &
FAKE_PID=$!
T_PIDS+=("$FAKE_PID")
wait_http "$URL/api/0/version" 10 || { fail "stand-in server did not start"; t_done; }

ID1=$(ingest "$FIXTURES/cpu_000.pb.gz" plain cpu env=prod)
ID2=$(ingest "$FIXTURES/heap_000.pb.gz" plain heap)
check "seeded the stand-in" test -n "$ID1" -a -n "$ID2"

RMNT="$T/rmnt"
mkdir -p "$RMNT"
T_MOUNTS+=("$RMNT")
"$PROFEFS" mount "$RMNT" --remote "$URL" --timeout 3s 2>"$T/remote.log" &
RPID=$!
T_PIDS+=("$RPID")
T_LOGS+=("$T/remote.log")
wait_mount "$RMNT" 10 || { fail "remote mount did not appear"; cat "$T/remote.log" >&2; t_done; }

# ---- reads ------------------------------------------------------------------
assert_eq "root lists the service" "diff merge plain" "$(ls "$RMNT" | sort | tr '\n' ' ' | sed 's/ $//')"
F1=$(ls "$RMNT/plain/cpu/env=prod" | grep "_$ID1.pb.gz$")
check "cpu profile listed in its label directory" test -n "$F1"
assert_eq "exact size without HEAD lengths" "$(stat -c %s "$FIXTURES/cpu_000.pb.gz")" "$(stat -c %s "$RMNT/plain/cpu/env=prod/$F1")"
check "cat = stored bytes" cmp -s "$FIXTURES/cpu_000.pb.gz" "$RMNT/plain/cpu/env=prod/$F1"
assert_eq "label directory" "$F1" "$(ls "$RMNT/plain/cpu/env=prod" | grep '\.pb\.gz$')"
F2=$(ls "$RMNT/plain/heap" | grep "_$ID2.pb.gz$")
check "heap profile = stored bytes" cmp -s "$FIXTURES/heap_000.pb.gz" "$RMNT/plain/heap/$F2"
NOW=$(date -u +%s)
check "merge of one profile = its bytes" cmp -s "$FIXTURES/heap_000.pb.gz" <(cat "$RMNT/merge/plain/heap/$((NOW - 600))..$((NOW + 600))")

# ---- writes -------------------------------------------------------------------
cp "$FIXTURES/cpu_001.pb.gz" "$RMNT/plain/cpu/new.pb.gz"
assert_eq "cp into the mount" 0 "$?"
http GET "$URL/api/0/profiles?service=plain&type=cpu&from=$(date -u -d @$((NOW - 600)) +%Y-%m-%dT%H:%M:%S)&to=$(date -u -d @$((NOW + 600)) +%Y-%m-%dT%H:%M:%S)"
assert_eq "the stand-in got it" 2 "$(json 'len(j["body"])')"
printf 'garbage' >"$T/bad"
cp "$T/bad" "$RMNT/plain/cpu/bad.pb.gz" 2>"$T/bad.err"
check "cp of a bad profile fails (profefe says 500)" test $? -ne 0

rm "$RMNT/plain/cpu/env=prod/$F1" 2>"$T/rm.err"
check "rm fails on a server without DELETE" test $? -ne 0
assert_contains "rm: ENOTSUP" "$(cat "$T/rm.err")" "Operation not supported"
http GET "$URL/api/0/profiles/$ID1"
assert_eq "nothing was deleted" 200 "$HTTP_STATUS"
check "still listed" test -f "$RMNT/plain/cpu/env=prod/$F1"

mkdir "$RMNT/later"
assert_eq "mkdir of a service" 0 "$?"
check "the new service shows in this mount" bash -c "ls '$RMNT' | grep -qx later"

kill -TERM "$RPID"
wait "$RPID"
assert_eq "remote mount exits 0 on SIGTERM" 0 "$?"
check "no stale mount" bash -c "! mountpoint -q '$RMNT'"
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
t_done
