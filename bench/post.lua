-- bench/post.lua — wrk script of scripts/bench: POST one profile over and over.
--
--   BENCH_BODY=profile.pb.gz wrk -t2 -c8 -d10s -s bench/post.lua 'URL/api/0/profiles?service=S&type=cpu'
--
-- Counts 200 answers per thread and prints one key=value line at the end.
-- wrk stops on a clock and drops the requests still in flight, so the server
-- may store up to -c more profiles than "ok" says; scripts/bench uses its
-- exact loader (bench/loader) for the stored == acknowledged check.
-- Every request sends a distinct profile: its number goes into the gzip
-- header's MTIME (bytes 5-8), as bench/loader does, since the server's
-- ingest is idempotent and identical bytes would be stored once.
local f = assert(io.open(assert(os.getenv("BENCH_BODY"), "BENCH_BODY unset"), "rb"))
local body = f:read("*a")
f:close()
local head, tail = body:sub(1, 4), body:sub(9)
local headers = {["Content-Type"] = "application/octet-stream"}
local n = 0

function request()
  n = n + 1
  local v = n * 4 + (id or 0) -- distinct across wrk's threads (id: 0..3)
  local mtime = string.char(v % 256, math.floor(v / 256) % 256,
                            math.floor(v / 65536) % 256,
                            math.floor(v / 16777216) % 256)
  return wrk.format("POST", nil, headers, head .. mtime .. tail)
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok, bad = 0, 0
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "wrk: sent=%d ok=%d bad=%d errors=%d elapsed=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, o, b, e.connect + e.read + e.write + e.timeout, secs,
    summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
