#!/usr/bin/env bash
# web_page.sh — the web page at "/" in real headless Chromium (Debian's
# chromium, driven over the DevTools protocol by tests/tools/web_check.py)
# against a real server holding the fixture profiles:
#   - "/" and "/ui/..." are served (embedded files), unknown ones are 404,
#     the API's routes are unchanged;
#   - a range given in the page's URL shows the flame graph (a frame of the
#     hottest function, as the API's top says) and the top table, whose
#     rows equal the API's top (format=json) row by row; the profile count
#     equals the list API's;
#   - diff mode (base_from/base_to): the table equals the diff API's top;
#   - an empty range shows the API's 4xx reason;
#   - every request the page makes goes to the server itself (air-gapped);
#     no JavaScript error;
#   - drawing 2 MB of folded stacks and zooming stay interactive (a loose
#     bound for a loaded machine; scripts/bench has the figures).
# The screenshots are kept in $OUT_DIR/web_page/ (meson's build dir).
. "$TESTS_DIR/lib.sh"
t_init
command -v chromium >/dev/null || { fail "chromium is not installed (scripts/setup)"; t_done; }
SHOTS="${OUT_DIR:-$T}/web_page"
mkdir -p "$SHOTS"
CHECK="$TESTS_DIR/tools/web_check.py"

start_server || t_done

# ---- routes ----------------------------------------------------------------------
http GET "$URL/"
assert_eq "GET / status" 200 "$HTTP_STATUS"
assert_contains "GET / is the page" "$HTTP_BODY" '<script src="/ui/app.js">'
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$URL/ui/app.js")
assert_eq "app.js content type" "text/javascript; charset=utf-8" "$ctype"
http GET "$URL/ui/style.css"
assert_eq "GET /ui/style.css status" 200 "$HTTP_STATUS"
http GET "$URL/ui/nope.js"
assert_eq "GET /ui/nope.js status" 404 "$HTTP_STATUS"
http GET "$URL/ui/%2e%2e%2fREADME.md"
assert_eq "GET /ui/%2e%2e%2fREADME.md status" 404 "$HTTP_STATUS"
http HEAD "$URL/" -I
assert_eq "HEAD / status" 200 "$HTTP_STATUS"
http GET "$URL/index.html"
assert_eq "GET /index.html (not a route) status" 404 "$HTTP_STATUS"
http POST "$URL/" --data x
assert_eq "POST / status" 405 "$HTTP_STATUS"
http GET "$URL/api/0/version"
assert_eq "the API is still there" 200 "$HTTP_STATUS"

# ---- data: cpu_000..cpu_014 are created at 1795556966..1795556982 ----------------------
for k in $(seq 0 14); do
    ingest "$FIXTURES/$(printf 'cpu_%03d.pb.gz' "$k")" web cpu "host=h$((k % 2))" >/dev/null
done
ingest "$FIXTURES/heap_000.pb.gz" web heap >/dev/null
FROM=$(utc 1795556966); TO=$(utc 1795556982)
Q="service=web&type=cpu&from=$FROM&to=$TO"

# page URL EVAL SHOT: loads the page at URL, writes what EVAL returns (and
# the requests, errors) as JSON to $T/SHOT.json and the screenshot to
# $SHOTS/SHOT.png.  Fails the check when the page never finishes loading.
page() {
    if ! python3 "$CHECK" "$1" "$SHOTS" --eval "$2" --shot "$3.png" >"$T/$3.json" 2>"$T/$3.err"; then
        fail "page $3 did not load: $(cat "$T/$3.err")"
        return 1
    fi
}

# What the page shows: the frames' names, the top table's rows, the
# message, the count line.
SHOWN='({
  frames: [...document.querySelectorAll("#flame .f")].map((e) => e.textContent),
  rows: [...document.querySelectorAll("#top tbody tr")].map((r) =>
    [r.lastChild.textContent, Number(r.dataset.flat), Number(r.dataset.cum)]),
  msg: document.getElementById("msg").hidden ? "" : document.getElementById("msg").textContent,
  count: document.getElementById("count").textContent,
  cmd: document.getElementById("cmd").textContent,
  times: window.profefsTimes })'

# compare NAME API_JSON_URL: the page's rows equal the API's top, the
# hottest function has a frame, every request went to $URL, no JS error.
compare() {
    curl -s "$2" >"$T/$1.api.json"
    python3 - "$T/$1.json" "$T/$1.api.json" "$URL" >"$T/$1.cmp" 2>&1 <<'EOF'
import json, sys
page, api, base = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
v = page["value"]
want = [[r["name"], r["flat"], r["cum"]] for r in api["rows"]]
bad = []
if not want:
    bad.append("the API's top has no rows")
if v["rows"] != want:
    bad.append("top rows differ: page %s... api %s..." % (v["rows"][:3], want[:3]))
hot = max(api["rows"], key=lambda r: abs(r["flat"]))["name"] if want else None
if hot not in v["frames"]:
    bad.append("no frame of the hottest function %r among %d frames" % (hot, len(v["frames"])))
if len(v["frames"]) < 5:
    bad.append("only %d frames" % len(v["frames"]))
if v["msg"]:
    bad.append("message shown: " + v["msg"])
other = [u for u in page["requests"] if not u.startswith(base + "/")]
if other:
    bad.append("requests elsewhere: %s" % other)
if page["errors"]:
    bad.append("JavaScript errors: %s" % page["errors"])
print("\n".join(bad) or "ok")
EOF
    assert_eq "$1: page equals the API" ok "$(cat "$T/$1.cmp")"
}

# ---- a range given in the URL --------------------------------------------------------
if page "$URL/?$Q" "$SHOWN" merge; then
    compare merge "$URL/api/0/profiles/merge?$Q&format=json"
    count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"]["count"])' "$T/merge.json")
    n=$(curl -s "$URL/api/0/profiles?$Q" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["body"]))')
    assert_eq "merge: 15 profiles listed" 15 "$n"
    assert_contains "merge: the profile count" "$count" "— 15 in the range"
    cmd=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"]["cmd"])' "$T/merge.json")
    assert_contains "merge: the go tool pprof command" "$cmd" "go tool pprof '$URL/api/0/profiles/merge?service=web&type=cpu&from="
fi

# the label filter: h1 only (7 profiles)
if page "$URL/?$Q&labels=host%3Dh1" "$SHOWN" labels; then
    compare labels "$URL/api/0/profiles/merge?$Q&labels=host=h1&format=json"
    count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"]["count"])' "$T/labels.json")
    assert_contains "labels: the profile count" "$count" "— 7 in the range"
fi

# ---- diff: cpu_000..004 against cpu_010..014 ------------------------------------------
BQ="base_from=$(utc 1795556966)&base_to=$(utc 1795556970)"
DQ="service=web&type=cpu&from=$(utc 1795556976)&to=$TO&$BQ"
if page "$URL/?$DQ" "$SHOWN" diff; then
    compare diff "$URL/api/0/profiles/diff?$DQ&format=json"
fi

# ---- an empty range: the API's reason -------------------------------------------------
EQ="service=web&type=cpu&from=2001-01-01T00:00:00&to=2001-01-02T00:00:00"
why=$(curl -s "$URL/api/0/profiles/merge?$EQ&format=folded" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"])')
if page "$URL/?$EQ" "$SHOWN" empty; then
    msg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"]["msg"])' "$T/empty.json")
    assert_contains "empty range: the page says so" "$msg" "Nothing to show for web / cpu"
    check "empty range: the API's reason is not empty" test -n "$why"
    assert_contains "empty range: the API's reason" "$msg" "$why"
fi

# ---- 2 MB of folded stacks: drawn, zoomed, searched --------------------------------------
BIG="(() => { $(cat "$TESTS_DIR/tools/synth_folded.js")
  const text = synthFolded(2e6), t0 = performance.now();
  profefs.showFlame(text, {type: 'cpu'});
  const n = document.querySelectorAll('#flame .f').length;
  document.body.offsetHeight; const t1 = performance.now();
  document.querySelector('#flame .f[data-i=\"3\"]').click();
  document.body.offsetHeight; const t2 = performance.now();
  profefs.setSearch('json');
  document.body.offsetHeight; const t3 = performance.now();
  return {bytes: text.length, frames: n, draw: t1 - t0, zoom: t2 - t1, search: t3 - t2,
          matched: document.getElementById('matched').textContent}; })()"
if page "$URL/?$Q" "$BIG" big; then
    python3 - "$T/big.json" >"$T/big.cmp" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))["value"]
print("2 MB folded: %(bytes)d bytes, %(frames)d frames, draw %(draw).0f ms, zoom %(zoom).0f ms, "
      "search %(search).0f ms, %(matched)s" % v, file=sys.stderr)
bad = []
if v["bytes"] < 2e6 or v["frames"] < 50:
    bad.append("too little drawn: %s" % v)
if not v["matched"].startswith("matched: "):
    bad.append("no matched share: %r" % v["matched"])
# loose bounds (an ASan server does not matter here, a loaded machine does)
for k, lim in (("draw", 10000), ("zoom", 5000), ("search", 5000)):
    if v[k] > lim:
        bad.append("%s took %.0f ms (> %d)" % (k, v[k], lim))
print("\n".join(bad) or "ok")
EOF
    cat "$T/big.cmp" >&2
    assert_eq "2 MB flame graph stays interactive" ok "$(tail -n 1 "$T/big.cmp")"
fi

echo "screenshots: $SHOTS" >&2
stop_server TERM
t_done
