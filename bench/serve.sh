# bench/serve.sh — sourced by the bench scripts that run a server of their
# own (bench/month.sh, bench/views.sh, bench/doors.sh):
#
#     bench_serve BIN DIR [SERVE ARGS...]
#
# starts `BIN serve` on a fresh data directory DIR/data and a free
# 127.0.0.1 port, its stderr in DIR/server.log, killed on exit; sets URL
# and PID and returns once /api/0/version answers (or after 30 s).
bench_serve() {
  local bin=$1 dir=$2 port i
  shift 2
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL=http://127.0.0.1:$port
  rm -rf "$dir/data"
  "$bin" serve --data "$dir/data" --addr "127.0.0.1:$port" "$@" 2>"$dir/server.log" &
  PID=$!
  trap 'kill $PID 2>/dev/null || true' EXIT
  for ((i = 0; i < 300; i++)); do
    curl -s -o /dev/null --max-time 1 "$URL/api/0/version" && break
    sleep 0.1
  done
}
