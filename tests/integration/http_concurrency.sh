#!/usr/bin/env bash
# http_concurrency.sh — the server under concurrent clients: 50 ingests at
# once all answer 200 and every id then returns its bytes exactly; queries
# and merges run while ingests do; a client that sends half a body and
# stalls blocks nobody and is dropped after the idle timeout; a graceful
# stop lets a running request finish.
. "$TESTS_DIR/lib.sh"
t_init

start_server || t_done

files=("$FIXTURES"/cpu_*.pb.gz "$FIXTURES"/heap_*.pb.gz "$FIXTURES"/goroutine_*.pb.gz "$FIXTURES"/block_*.pb.gz)
typeof() { basename "$1" | cut -d_ -f1; }

# ---- 50 concurrent ingests (plus queries and merges alongside) ----------------------
N=50
mkdir -p "$T/c"
pids=()
for ((i = 0; i < N; i++)); do
    f=${files[$((i % ${#files[@]}))]}
    echo "$f" >"$T/c/$i.file"
    curl -s --max-time 60 -o "$T/c/$i.json" -w '%{http_code}' --data-binary @"$f" \
        "$URL/api/0/profiles?service=conc&type=$(typeof "$f")&labels=n=$i" >"$T/c/$i.status" &
    pids+=($!)
done
for ((i = 0; i < 10; i++)); do
    curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' \
        "$URL/api/0/profiles/merge?service=conc&type=cpu&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00" >>"$T/c/merges" &
    pids+=($!)
    curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "$URL/api/0/services" >>"$T/c/services" &
    pids+=($!)
done
wait "${pids[@]}"   # not a bare wait: the server is a background job too

# One python process checks all of them (status, labels, bytes): prints
# FAIL lines and "OK <good> <distinct ids>".
python3 - "$T/c" "$N" "$URL" >"$T/c/verify" <<'EOF'
import json, sys, urllib.request
d, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
good, ids = 0, set()
for i in range(n):
    status = open("%s/%d.status" % (d, i)).read().strip()
    body = open("%s/%d.json" % (d, i), "rb").read()
    if status != "200":
        print("FAIL ingest %d answered %s: %r" % (i, status, body[:200]))
        continue
    meta = json.loads(body)["body"]
    if meta["labels"] != [{"key": "n", "value": str(i)}]:
        print("FAIL ingest %d has labels of another request: %r" % (i, meta["labels"]))
        continue
    want = open(open("%s/%d.file" % (d, i)).read().strip(), "rb").read()
    got = urllib.request.urlopen("%s/api/0/profiles/%s" % (url, meta["id"])).read()
    if got != want:
        print("FAIL profile %d (%s) not returned byte-identical" % (i, meta["id"]))
        continue
    good += 1
    ids.add(meta["id"])
print("OK %d %d" % (good, len(ids)))
EOF
while read -r word rest; do
    [ "$word" = FAIL ] && fail "$rest"
done <"$T/c/verify"
read -r _ ok_count distinct < <(grep '^OK ' "$T/c/verify")
assert_eq "concurrent ingests answered 200" "$N" "$ok_count"
assert_eq "distinct ids" "$N" "$distinct"
check "merges during ingests answered 200 or 404" test -z "$(grep -vE '^(200|404)$' "$T/c/merges")"
check "services during ingests answered 200 or 404" test -z "$(grep -vE '^(200|404)$' "$T/c/services")"
http GET "$URL/api/0/profiles?service=conc&type=cpu&from=2000-01-01T00:00:00&to=2100-01-01T00:00:00"
ncpu=0
for ((i = 0; i < N; i++)); do [ "$(typeof "$(cat "$T/c/$i.file")")" = cpu ] && ncpu=$((ncpu + 1)); done
assert_eq "every cpu ingest is found" "$ncpu" "$(json 'len(j["body"])')"

# ---- a stalled upload does not block others ---------------------------------------------
# Sends headers and half of a 10000-byte body, then waits for an answer
# that cannot come (the test kills it).
cat >"$T/stall.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /api/0/profiles?service=stall&type=cpu HTTP/1.1\r\n"
          b"Host: x\r\nContent-Length: 10000\r\n\r\n" + b"x" * 5000)
open(sys.argv[2], "w").write("sent\n")
s.settimeout(30)
t = time.time()
try:
    data = s.recv(100)
except socket.timeout:
    data = b"timeout"
print("%.1f %r" % (time.time() - t, data), flush=True)
EOF

stall() { # PORT READYFILE OUTFILE: starts a stalled client in the background
    python3 "$T/stall.py" "$1" "$2" >"$3" &
    STALL_PID=$!
    local i
    for ((i = 0; i < 50; i++)); do [ -s "$2" ] && return 0; sleep 0.1; done
    fail "stalled client did not start"
}

stall "$PORT" "$T/ready1" "$T/stall1.out"
sleep 0.3
t0=$(date +%s%N)
http GET "$URL/api/0/version"
assert_eq "GET during a stalled upload" 200 "$HTTP_STATUS"
id=$(ingest "$FIXTURES/cpu_007.pb.gz" stall2 cpu)
t1=$(date +%s%N)
check "POST during a stalled upload" grep -qE '^[0-9a-v]{20}$' <<<"$id"
ms=$(( (t1 - t0) / 1000000 ))
check "requests during a stalled upload took ${ms} ms (< 3000)" test "$ms" -lt 3000
check "stalled client still connected" kill -0 "$STALL_PID"
kill "$STALL_PID" 2>/dev/null
wait "$STALL_PID" 2>/dev/null
stop_server TERM
check "the abandoned upload is logged with status 0" \
    grep -qE '^http POST /api/0/profiles 0 0 [0-9.]+$' "$SERVER_LOG"

# ---- graceful stop: a request in flight completes --------------------------------------
# The client sends half of a profile, the server gets SIGTERM, then the client
# sends the rest: the ingest must still be answered 200 and be durable.
cat >"$T/inflight.py" <<'EOF'
import socket, sys, time
port, path, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /api/0/profiles?service=inflight&type=cpu HTTP/1.1\r\n"
          b"Host: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data[:len(data) // 2])
open(ready, "w").write("sent\n")
time.sleep(1.0)
s.sendall(data[len(data) // 2:])
s.settimeout(30)
resp = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    resp += chunk
head, _, body = resp.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
print(body.decode().strip())
EOF
DATA="$T/data2"
start_server || t_done
python3 "$T/inflight.py" "$PORT" "$FIXTURES/cpu_009.pb.gz" "$T/ready2" >"$T/inflight.out" &
cpid=$!
for ((i = 0; i < 50; i++)); do [ -s "$T/ready2" ] && break; sleep 0.1; done
sleep 0.3
kill -TERM "$SERVER_PID"
wait "$cpid"
assert_eq "request in flight at SIGTERM is answered" "HTTP/1.1 200 OK" "$(head -n1 "$T/inflight.out")"
inflight_id=$(sed -n 2p "$T/inflight.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body"]["id"])' 2>/dev/null)
wait "$SERVER_PID" 2>/dev/null; rc=$?
assert_eq "server exit status after SIGTERM with a request in flight" 0 "$rc"
check "no sanitizer report in $SERVER_LOG" sanitizer_clean "$SERVER_LOG"
SERVER_PID=""
start_server || t_done
curl -s -o "$T/inflight.got" "$URL/api/0/profiles/$inflight_id"
check "the profile ingested during the stop is durable" cmp -s "$FIXTURES/cpu_009.pb.gz" "$T/inflight.got"
stop_server TERM

t_done
