#!/usr/bin/env bash
# bench/page.sh — the web page's speed in headless Chromium (issue 19):
#
#     bench/page.sh URL SERVICE FROM TO [RUNS]
#
# Loads URL/?service=SERVICE&type=cpu&from=FROM&to=TO RUNS times (default 5),
# each in a fresh browser (empty cache) through tests/tools/web_check.py, and
# reads the page's own marks (window.profefsTimes: ms since the navigation
# started) for when the flame graph, the top table and the histogram showed.
# Then draws 2 MB of folded stacks (tests/tools/synth_folded.js) in the page
# and times the draw, a zoom and a search, each up to the next layout.
# Prints key=value lines on stdout (medians; *_all = every run):
#   flame_ms top_ms hist_ms flame_all frames big_draw_ms big_zoom_ms
#   big_search_ms big_frames
# scripts/bench runs it on the 1,000-profile merge set.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
URL=$1 SERVICE=$2 FROM=$3 TO=$4 RUNS=${5:-5}
CHECK=tests/tools/web_check.py
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-page.XXXXXX")
trap 'rm -rf "$W"' EXIT
command -v chromium >/dev/null || { echo "bench/page.sh: chromium is not installed" >&2; exit 1; }

page="$URL/?service=$SERVICE&type=cpu&from=$FROM&to=$TO"
marks='({times: window.profefsTimes, frames: document.querySelectorAll("#flame .f").length,
         msg: document.getElementById("msg").hidden ? "" : document.getElementById("msg").textContent})'
for ((r = 0; r < RUNS; r++)); do
  python3 "$CHECK" "$page" "$W" --eval "$marks" >"$W/run.$r.json"
done

big="(() => { $(cat tests/tools/synth_folded.js)
  const text = synthFolded(2e6), t0 = performance.now();
  profefs.showFlame(text, {type: 'cpu'});
  document.body.offsetHeight; const t1 = performance.now();
  document.querySelector('#flame .f[data-i=\"3\"]').click();
  document.body.offsetHeight; const t2 = performance.now();
  profefs.setSearch('json');
  document.body.offsetHeight; const t3 = performance.now();
  return {draw: t1 - t0, zoom: t2 - t1, search: t3 - t2,
          frames: document.querySelectorAll('#flame .f').length}; })()"
for ((r = 0; r < RUNS; r++)); do
  python3 "$CHECK" "$page" "$W" --eval "$big" >"$W/big.$r.json"
done

python3 - "$W" "$RUNS" <<'EOF'
import json, statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
pages = [json.load(open("%s/run.%d.json" % (w, r)))["value"] for r in range(runs)]
bigs = [json.load(open("%s/big.%d.json" % (w, r)))["value"] for r in range(runs)]
for p in pages:
    if p["msg"] or "flame" not in p["times"]:
        sys.exit("bench/page.sh: the page showed no flame graph: %s" % p["msg"])
med = lambda xs: round(statistics.median(xs), 1)
flame = [p["times"]["flame"] for p in pages]
print("flame_ms=%s" % med(flame))
print("flame_all=%s" % ",".join("%.0f" % x for x in flame))
print("top_ms=%s" % med([p["times"]["top"] for p in pages]))
print("hist_ms=%s" % med([p["times"]["histogram"] for p in pages]))
print("frames=%d" % pages[0]["frames"])
for k in ("draw", "zoom", "search"):
    print("big_%s_ms=%s" % (k, med([b[k] for b in bigs])))
print("big_frames=%d" % bigs[0]["frames"])
EOF
