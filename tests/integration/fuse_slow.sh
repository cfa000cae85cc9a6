#!/usr/bin/env bash
# fuse_slow.sh — one slow ingest does not freeze the mount (issue 22,
# point 3).  `profefs mount --remote` talks to a profefs node through a
# small proxy written here that holds the POSTs of service "slow" for
# DELAY seconds and passes everything else straight on.  While a cp into
# slow/cpu/ is stuck in close(), unrelated operations — stat of a missing
# name, cp into another directory, ls, stat of a missing name beside the
# stuck file — must answer in well under a second (before the fix they
# waited for the stuck ingest: the buffer's lock was held across the store
# call, and every table lookup took each buffer's lock).  The stuck cp then
# completes with its profile stored.
. "$TESTS_DIR/lib.sh"
t_init
DELAY=8
BOUND_MS=2000   # each unrelated operation; the stuck one takes DELAY s

start_server || t_done

cat >"$T/slowproxy.py" <<'EOF'
import http.client, os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, upstream, delay, marks = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
host, uport = upstream.rsplit(":", 1)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        slow = self.command == "POST" and q.get("service") == ["slow"]
        if slow:
            open(marks + ".held", "w").close()
            time.sleep(delay)
        c = http.client.HTTPConnection(host, int(uport), timeout=60)
        c.request(self.command, self.path, body=body,
                  headers={k: v for k, v in self.headers.items() if k.lower() in ("content-type",)})
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else r.getheader("Content-Length") or 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()
        if slow:
            open(marks + ".released", "w").close()

    do_GET = do_POST = do_DELETE = do_HEAD = relay

    def log_message(self, fmt, *args):
        sys.stderr.write("proxy %s %s\n" % (self.command, self.path))

ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
PPORT=$(free_port)
python3 "$T/slowproxy.py" "$PPORT" "127.0.0.1:$PORT" "$DELAY" "$T/slow" 2>"$T/proxy.log" &
T_PIDS+=("$!")
wait_http "http://127.0.0.1:$PPORT/api/0/version" 10 || { fail "proxy did not start"; t_done; }

MNT=$T/mnt
mount_remote "$MNT" "http://127.0.0.1:$PPORT" || t_done
mkdir -p "$MNT/slow/cpu" "$MNT/fast/cpu" "$MNT/fast/heap"
check "the fast path works" cp "$FIXTURES/cpu_002.pb.gz" "$MNT/fast/cpu/warm.pb.gz"

# ms CMD...: runs CMD, prints how many milliseconds it took.
ms() {
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

t0=$(date +%s%N)
( cp "$FIXTURES/cpu_000.pb.gz" "$MNT/slow/cpu/stuck.pb.gz"; echo $? >"$T/stuck.rc"; date +%s%N >"$T/stuck.end" ) &
STUCK=$!
for i in $(seq 100); do [ -e "$T/slow.held" ] && break; sleep 0.1; done
check "the proxy holds the slow ingest" test -e "$T/slow.held"

a=$(ms stat "$MNT/fast/cpu/missing.pb.gz")
b=$(ms cp "$FIXTURES/cpu_001.pb.gz" "$MNT/fast/cpu/other.pb.gz")
c=$(ms ls -l "$MNT/fast/cpu")
d=$(ms stat "$MNT/slow/cpu/nothere.pb.gz")
e=$(ms stat "$MNT/fast")
check "all measured while the slow ingest was still held" test ! -e "$T/slow.released"
echo "while one ingest is stuck: stat missing ${a} ms, cp elsewhere ${b} ms, ls -l ${c} ms, stat beside it ${d} ms, stat dir ${e} ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for v in "stat of a missing name:$a" "cp into another directory:$b" "ls -l of another directory:$c" \
         "stat of a missing name beside the stuck file:$d" "stat of another service:$e"; do
    check "${v%%:*} answers in under $BOUND_MS ms while an ingest is stuck (${v##*:} ms)" \
        test "${v##*:}" -lt "$BOUND_MS"
done
check "the cp elsewhere stored its profile" test -f "$MNT/fast/cpu/other.pb.gz"

wait "$STUCK"
assert_eq "the stuck cp succeeds in the end" 0 "$(cat "$T/stuck.rc")"
took=$(( ($(cat "$T/stuck.end") - t0) / 1000000 ))
check "the stuck cp took the proxy's delay (${took} ms)" test "$took" -ge $((DELAY * 1000 - 500))
http GET "$URL/api/0/profiles?service=slow&type=cpu&from=0&to=9999999999"
assert_eq "its profile is stored" 1 "$(json 'len(j["body"])')"
http GET "$URL/api/0/profiles?service=fast&type=cpu&from=0&to=9999999999"
assert_eq "both fast profiles are stored" 2 "$(json 'len(j["body"])')"

kill -TERM "$RPID"; wait "$RPID" 2>/dev/null
t_done
