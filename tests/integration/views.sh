#!/usr/bin/env bash
# views.sh — the views of issue 19, against Go's own pprof:
#   - folded stacks of an HTTP merge equal what Go's pprof library computes
#     from `go tool pprof -proto` of the same files (tests/goviews, built
#     offline with Debian's golang-github-google-pprof-dev), for CPU
#     profiles with inlined frames and for heap with sample=;
#   - format=top is `go tool pprof -top` of the same files, text for text
#     (so flat and cum per function are equal);
#   - the svg parses as XML, holds the hottest function, fetches nothing,
#     and its script zooms, searches and resets in headless Chromium,
#     and stays under 2 MB with 100,000 distinct stacks (goviews synth);
#   - a diff of a range against itself is all zero (folded and top), and
#     a diff's two columns are the two ranges' folded stacks; the pprof
#     diff reads in `go tool pprof -top` as -diff_base's;
#   - the mount's .svg/.folded/.top files and the diff/ tree give the bytes
#     HTTP gives; `profefs merge --format` gives them offline;
#   - bad input (format, sample type, empty range, a diff whose sides
#     differ in sample types) is a 4xx with the reason, logged, and the
#     store is unchanged.
. "$TESTS_DIR/lib.sh"
t_init
export TZ=UTC HOME="$T/home" GOCACHE="$T/gocache" PPROF_TMPDIR="$T/pprof"
mkdir -p "$HOME" "$GOCACHE" "$PPROF_TMPDIR"
FIXTURES="$TESTS_DIR/fixtures"
DATA_DIR="$TESTS_DIR/data"
pprof() { go tool pprof "$@" 2>>"$T/pprof.err"; }

# The checker: GOPATH mode, offline, the pprof package from Debian.
(cd "$TESTS_DIR/goviews" &&
    GO111MODULE=off GOPATH="$T/gopath:/usr/share/gocode" GOFLAGS= GOPROXY=off \
    go build -o "$T/goviews" .) 2>"$T/gobuild.log"
check "tests/goviews builds (golang-github-google-pprof-dev): $(tail -2 "$T/gobuild.log")" \
    test -x "$T/goviews"
goviews() { "$T/goviews" "$@"; }

M="$T/mnt"
start_server --mount "$M" || t_done
API="$URL/api/0/profiles"

# cpu_000..014 are at 1795556966..982 (no 972, 980); cpu_labels_* are real Go profiles
# with an inlined function, retimed to 1795560000+k.
for f in "$FIXTURES"/cpu_0*.pb.gz; do ingest "$f" vw cpu region=eu >/dev/null; done
for k in 0 1 2; do
    retime "$DATA_DIR/cpu_labels_$k.pb.gz" "$T/lab$k.pb.gz" $((1795560000 + k))
    ingest "$T/lab$k.pb.gz" inl cpu >/dev/null
done
for f in "$FIXTURES"/heap_*.pb.gz; do ingest "$f" vw heap >/dev/null; done
ALL="from=1795556966&to=1795556982"
A="from=1795556966&to=1795556972"       # cpu_000..005
B="from=1795556973&to=1795556982"       # cpu_006..014

# ---- folded against Go's pprof library -------------------------------------------------
fold_check() { # DESC QUERY FILES... : HTTP folded == goviews of pprof -proto
    local desc=$1 q=$2 sample=""; shift 2
    case "$q" in *sample=*) sample=${q##*sample=}; sample=${sample%%&*} ;; esac
    curl -s "$API/merge?$q&format=folded" | sort >"$T/f.ours"
    pprof -proto "$@" >"$T/f.pb.gz"
    goviews folded "$T/f.pb.gz" $sample >"$T/f.go"
    check "$desc: folded not empty" test -s "$T/f.ours"
    if cmp -s "$T/f.ours" "$T/f.go"; then ok; else
        fail "$desc: folded differs from Go's: $(diff "$T/f.ours" "$T/f.go" | head -5)"; fi
}
fold_check "cpu merge" "service=vw&type=cpu&$ALL" "$FIXTURES"/cpu_0*.pb.gz
fold_check "inlined frames" "service=inl&type=cpu&from=1795560000&to=1795560002" "$T"/lab*.pb.gz
assert_contains "inlined frames are frames of their own" "$(cat "$T/f.go")" "main.burn"
fold_check "heap default sample" "service=vw&type=heap&from=0&to=now" "$FIXTURES"/heap_*.pb.gz
fold_check "heap sample=alloc_space" "service=vw&type=heap&from=0&to=now&sample=alloc_space" "$FIXTURES"/heap_*.pb.gz

# ---- top against go tool pprof -top ----------------------------------------------------------
top_check() { # DESC QUERY PPROF-ARGS...
    local desc=$1 q=$2; shift 2
    curl -s "$API/merge?$q&format=top" >"$T/t.ours"
    pprof -top "$@" >"$T/t.go"
    if cmp -s "$T/t.ours" "$T/t.go"; then ok; else
        fail "$desc: top differs from go tool pprof -top: $(diff "$T/t.ours" "$T/t.go" | head -6)"; fi
}
top_check "cpu top" "service=vw&type=cpu&$ALL" "$FIXTURES"/cpu_0*.pb.gz
top_check "inline top" "service=inl&type=cpu&from=1795560000&to=1795560002" "$T"/lab*.pb.gz
top_check "heap top" "service=vw&type=heap&from=0&to=now" "$FIXTURES"/heap_*.pb.gz
top_check "heap top alloc_objects" "service=vw&type=heap&from=0&to=now&sample=alloc_objects" \
    -sample_index=alloc_objects "$FIXTURES"/heap_*.pb.gz
assert_contains "inline marked as pprof does" "$(cat "$T/t.go" | head -20; curl -s "$API/merge?service=inl&type=cpu&from=1795560000&to=1795560002&format=top")" "(inline)"
# flat and cum per function, parsed (the same figures, whatever the header)
curl -s "$API/merge?service=vw&type=cpu&$ALL&format=json" >"$T/j.json"
pprof -top -unit=ns "$FIXTURES"/cpu_0*.pb.gz >"$T/t.ns"
python3 - "$T/j.json" "$T/t.ns" >"$T/flatcum.out" 2>&1 <<'PY'
import json, sys
rows = {r["name"]: (r["flat"], r["cum"]) for r in json.load(open(sys.argv[1]))["rows"]}
go = {}
for line in open(sys.argv[2]):
    f = line.split()
    ns = lambda x: 0 if x == "0" else int(float(x[:-2]))
    if len(f) == 6 and f[0][-2:] in ("ns", "0") and f[3][-2:] in ("ns", "0") and "%" in f[1]:
        go[f[5]] = (ns(f[0]), ns(f[3]))
assert go, "no rows in go tool pprof -top"
assert set(go) == set(rows), (set(go) ^ set(rows))
bad = [n for n in go if go[n] != rows[n]]
assert not bad, bad[:3]
print(len(go), "functions")
PY
check "json flat/cum per function == go tool pprof -top -unit=ns: $(cat "$T/flatcum.out")" \
    grep -q functions "$T/flatcum.out"

# ---- svg ------------------------------------------------------------------------------
http GET "$API/merge?service=vw&type=cpu&$ALL&format=svg"
assert_eq "svg status" 200 "$HTTP_STATUS"
cp "$T/body" "$T/m.svg"
hot=$(curl -s "$API/merge?service=vw&type=cpu&$ALL&format=top" | awk 'f && NF >= 6 {print $6; exit} /flat%/ {f=1}')
python3 - "$T/m.svg" "$hot" >"$T/svg.out" 2>&1 <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
titles = [t.text or "" for t in root.iter(ns + "title")]
assert any(t.split("\n")[0] == sys.argv[2] for t in titles), "hottest function not in the svg"
assert root.find(ns + "script") is not None, "no script"
text = open(sys.argv[1]).read()
for bad in ("href=\"http", "src=\"http", "@import", "url(http"):
    assert bad not in text, bad
print("svg ok", len(titles), "frames")
PY
check "svg: XML with the hottest function ($hot), no network: $(cat "$T/svg.out")" \
    grep -q "svg ok" "$T/svg.out"
check "svg under 2 MB" test "$(stat -c %s "$T/m.svg")" -lt 2000000
# its script in real headless Chromium, opened from a file: click zooms,
# search reports the share that matches (checked against the folded
# stacks), reset goes back; nothing else is fetched, no error
python3 "$TESTS_DIR/tools/web_check.py" "file://$T/m.svg" "$T/chromium" \
    --wait "typeof fr !== 'undefined' && fr.length > 0" --eval "(() => {
      const z = fr.find(f => f.name === '$hot'); z.g.onclick();
      const zw = +z.r.getAttribute('width');
      const hidden = fr.filter(f => f.g.style.display === 'none').length;
      search('codec'); const m = document.getElementById('matched').textContent;
      reset(); return {zw, orig: z.w, hidden, m, back: +z.r.getAttribute('width')}; })()" \
    >"$T/chromium.json" 2>"$T/chromium.err"
curl -s "$API/merge?service=vw&type=cpu&$ALL&format=folded" >"$T/all.folded"
python3 - "$T/chromium.json" "$T/all.folded" >"$T/js.out" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["value"]
assert not r["errors"], r["errors"]
assert r["requests"] == [r["requests"][0]] and r["requests"][0].startswith("file:"), r["requests"]
assert abs(v["zw"] - 1180) < 0.1, v           # the zoomed frame spans the width
assert v["hidden"] > 0, v                     # what is outside it is hidden
assert abs(v["back"] - v["orig"]) < 0.01, v   # reset
tot = hit = 0
for line in open(sys.argv[2]):
    stack, val = line.rsplit(" ", 1)
    tot += int(val)
    if any("codec" in f for f in stack.split(";")):
        hit += int(val)
want = 100.0 * hit / tot
got = float(v["m"].split()[1].rstrip("%"))
assert abs(got - want) < 0.1, (got, want)
print("svg script ok: matched %.2f%% (folded: %.2f%%)" % (got, want))
PY
check "svg in chromium: zoom, search, reset: $(cat "$T/js.out") $(tail -2 "$T/chromium.err")" \
    grep -q "svg script ok" "$T/js.out"
# 100,000 distinct stacks: narrow frames merged, still under 2 MB
goviews synth 100000 "$T/big.pb.gz"
ingest "$T/big.pb.gz" big cpu >/dev/null
curl -s -o "$T/big.svg" "$API/merge?service=big&type=cpu&from=0&to=now&format=svg"
size=$(stat -c %s "$T/big.svg")
check "svg of 100,000 stacks: $size bytes < 2 MB" test "$size" -gt 100000 -a "$size" -lt 2000000
check "svg of 100,000 stacks parses" python3 -c "import xml.etree.ElementTree as E; E.parse('$T/big.svg')"
check "svg of 100,000 stacks: narrow frames merged" grep -q "narrow frames)" "$T/big.svg"

# ---- diffs ----------------------------------------------------------------------------
D="$API/diff?service=vw&type=cpu&labels=region=eu"
curl -s "$D&base_from=1795556966&base_to=1795556972&$A&format=folded" >"$T/self.folded"
check "diff of a range with itself: lines" test -s "$T/self.folded"
check "diff of a range with itself: every BASE == TARGET" \
    awk '$(NF-1) != $NF {exit 1}' "$T/self.folded"
curl -s "$D&base_from=1795556966&base_to=1795556972&$A&format=json" >"$T/self.json"
check "diff of a range with itself: flat and cum all zero" python3 -c "
import json,sys; r=json.load(open('$T/self.json'))['rows']
sys.exit(0 if all(x['flat']==0 and x['cum']==0 for x in r) else 1)"
curl -s -o "$T/self.pb.gz" "$D&base_from=1795556966&base_to=1795556972&$A"
assert_contains "go tool pprof -top of a self diff: nothing changed" \
    "$(pprof -top "$T/self.pb.gz")" "Showing nodes accounting for 0, 0% of"

curl -s "$D&base_from=1795556966&base_to=1795556972&$B&format=folded" >"$T/ab.folded"
curl -s "$API/merge?service=vw&type=cpu&$A&format=folded" >"$T/a.folded"
curl -s "$API/merge?service=vw&type=cpu&$B&format=folded" >"$T/b.folded"
python3 - "$T/ab.folded" "$T/a.folded" "$T/b.folded" >"$T/cols.out" 2>&1 <<'PY'
import sys
def load(p, col):
    d = {}
    for line in open(p):
        f = line.rstrip("\n").rsplit(" ", 2 if col else 1)
        if col:
            if int(f[col]) != 0:
                d[f[0]] = int(f[col])
        else:
            d[f[0]] = int(f[1])
    return d
assert load(sys.argv[1], 1) == load(sys.argv[2], 0), "BASE column != base folded"
assert load(sys.argv[1], 2) == load(sys.argv[3], 0), "TARGET column != target folded"
print("columns ok")
PY
check "diff columns == the two ranges' folded: $(cat "$T/cols.out")" grep -q "columns ok" "$T/cols.out"
curl -s -o "$T/ab.pb.gz" "$D&base_from=1795556966&base_to=1795556972&$B"
curl -s -o "$T/a.pb.gz" "$API/merge?service=vw&type=cpu&$A"
curl -s -o "$T/b.pb.gz" "$API/merge?service=vw&type=cpu&$B"
pprof -top "$T/ab.pb.gz" >"$T/ab.top1"
pprof -top -diff_base "$T/a.pb.gz" "$T/b.pb.gz" >"$T/ab.top2"
check "pprof diff == go tool pprof -diff_base (top)" cmp -s "$T/ab.top1" "$T/ab.top2"
curl -s "$D&base_from=1795556966&base_to=1795556972&$B&format=top" >"$T/ab.top3"
check "format=top of a diff == go tool pprof -top -diff_base" cmp -s "$T/ab.top3" "$T/ab.top2"
curl -s "$D&base_from=1795556966&base_to=1795556972&$B&format=svg" >"$T/ab.svg"
check "diff svg parses" python3 -c "import xml.etree.ElementTree as E; E.parse('$T/ab.svg')"

# ---- the mount: same bytes as HTTP --------------------------------------------------------
for v in svg folded top; do
    check "mount merge .$v == HTTP" cmp -s "$M/merge/vw/cpu/1795556966..1795556982.$v" \
        <(curl -s "$API/merge?service=vw&type=cpu&$ALL&format=$v")
    check "mount label dir merge .$v == HTTP" cmp -s "$M/merge/vw/cpu/region=eu/1795556966..1795556972.$v" \
        <(curl -s "$API/merge?service=vw&type=cpu&labels=region=eu&$A&format=$v")
    check "mount diff .$v == HTTP" \
        cmp -s "$M/diff/vw/cpu/region=eu/1795556966..1795556972/1795556973..1795556982.$v" \
        <(curl -s "$D&base_from=1795556966&base_to=1795556972&$B&format=$v")
done
cat "$M/diff/vw/cpu/region=eu/1795556966..1795556972/1795556973..1795556982" >"$T/mab.pb.gz"
check "mount diff (pprof) == HTTP: $(cmp "$T/mab.pb.gz" "$T/ab.pb.gz" 2>&1)" cmp -s "$T/mab.pb.gz" "$T/ab.pb.gz"
cat "$M/merge/vw/cpu/1795556966..1795556972" >"$T/ma.pb.gz"
check "mount merge (pprof) unchanged by views: $(cmp "$T/ma.pb.gz" "$T/a.pb.gz" 2>&1)" cmp -s "$T/ma.pb.gz" "$T/a.pb.gz"
assert_contains "go tool pprof reads the mount's diff" \
    "$(pprof -top "$M/diff/vw/cpu/region=eu/1795556966..1795556972/1795556973..1795556982")" "flat%"
# two base ranges whose names share their first 40 bytes are two diffs
# (the cache key once cut the base's name there)
BA="$M/diff/vw/cpu/2026-11-24T21:49:26Z..2026-11-24T21:49:30Z/now-60d..now.folded"
BB="$M/diff/vw/cpu/2026-11-24T21:49:26Z..2026-11-24T21:49:39Z/now-60d..now.folded"
cat "$BA" >"$T/ba.folded" && cat "$BB" >"$T/bb.folded"
check "diff against a long-named base" test -s "$T/ba.folded"
if cmp -s "$T/ba.folded" "$T/bb.folded"; then
    fail "diffs against two long-named bases are the same bytes"
else ok; fi
# listings: a range with profiles shows its views; diff is reserved
retime "$FIXTURES/cpu_000.pb.gz" "$T/now.pb.gz" "$(date +%s)"
ingest "$T/now.pb.gz" vw cpu >/dev/null
ls "$M/merge/vw/cpu" >"$T/ls.txt"
for n in now-1h..now now-1h..now.svg now-1h..now.folded now-1h..now.top; do
    check "ls merge/vw/cpu shows $n" grep -qx "$n" "$T/ls.txt"
done
check "ls / shows diff" grep -qx diff <(ls "$M")
check "ls diff/ shows the service" grep -qx vw <(ls "$M/diff")
head -c 5 "$M/merge/vw/cpu/now-1h..now.svg" >"$T/head"
assert_eq "open merge/vw/cpu/now-1h..now.svg is an svg" "<?xml" "$(cat "$T/head")"
check "mkdir diff/x refused" bash -c "! mkdir '$M/diff/x' 2>/dev/null"
http POST "$API?service=diff&type=cpu" --data-binary @"$FIXTURES/cpu_000.pb.gz"
assert_eq "service diff is reserved (HTTP 400)" 400 "$HTTP_STATUS"

# ---- one stored profile, and several by id ---------------------------------------------------
id=$(ingest "$FIXTURES/block_000.pb.gz" one block)
check "GET /profiles/<id>?format=folded == profefs merge --format folded of the file" cmp -s \
    <(curl -s "$API/$id?format=folded") <("$PROFEFS" merge --format folded "$FIXTURES/block_000.pb.gz")
check "GET /profiles/<id> (pprof) unchanged: the stored bytes" cmp -s \
    <(curl -s "$API/$id") "$FIXTURES/block_000.pb.gz"

# ---- offline: profefs merge --format --------------------------------------------------------
check "profefs merge --format folded == HTTP" cmp -s \
    <("$PROFEFS" merge --format folded "$FIXTURES"/cpu_0*.pb.gz) \
    <(curl -s "$API/merge?service=vw&type=cpu&$ALL&format=folded")

# ---- bad input: 4xx with the reason, logged, the store unchanged ----------------------------
curl -s "$API?service=vw&type=cpu&from=0&to=now" >"$T/before.json"
bad() { # DESC STATUS WANTED-TEXT URL
    http GET "$4"
    assert_eq "$1: status" "$2" "$HTTP_STATUS"
    assert_contains "$1: reason" "$HTTP_BODY" "$3"
    check "$1: reason logged" grep -qF "${3//\\\"/\"}" "$SERVER_LOG"
}
bad "unknown format" 400 'unknown format \"bmp\"' "$API/merge?service=vw&type=cpu&$ALL&format=bmp"
bad "unknown format (id)" 400 'unknown format \"x\"' "$API/0123456789abcdefghij?format=x"
bad "unknown sample type" 400 'unknown sample type \"nope\"' "$API/merge?service=vw&type=cpu&$ALL&format=svg&sample=nope"
bad "diff: empty base range" 404 "no profiles in the base range" "$D&base_from=1000&base_to=2000&$A&format=svg"
bad "diff: empty target range" 404 "no profiles in the target range" "$D&base_from=1795556966&base_to=1795556972&from=1000&to=2000"
bad "diff: missing base_from" 400 'missing \"base_from\"' "$D&base_to=1795556972&$A"
# type other takes any profile: a cpu range against a heap range
retime "$FIXTURES/cpu_000.pb.gz" "$T/o1.pb.gz" 1700000000
retime "$FIXTURES/heap_000.pb.gz" "$T/o2.pb.gz" 1700000100
ingest "$T/o1.pb.gz" mix other >/dev/null
ingest "$T/o2.pb.gz" mix other >/dev/null
bad "diff of different sample types" 400 "base and target differ" \
    "$API/diff?service=mix&type=other&base_from=1700000000&base_to=1700000050&from=1700000100&to=1700000200&format=folded"
bad "empty merge range" 404 "nothing found" "$API/merge?service=vw&type=cpu&from=1000&to=2000&format=svg"
check "merge file view of an empty range: ENOENT" bash -c "! cat '$M/merge/vw/cpu/1000..2000.svg' 2>/dev/null"
# a stack of 200,000 frames: every view answers, nothing recurses that deep
goviews deep 200000 "$T/deep.pb.gz"
ingest "$T/deep.pb.gz" deep cpu >/dev/null
for v in svg folded top json; do
    http GET "$API/merge?service=deep&type=cpu&from=0&to=now&format=$v"
    assert_eq "a 200,000-frame stack as $v" 200 "$HTTP_STATUS"
done
curl -s "$API/merge?service=deep&type=cpu&from=0&to=now&format=svg" >"$T/deep.svg"
check "the deep svg parses" python3 -c "import xml.etree.ElementTree as E; E.parse('$T/deep.svg')"
# long non-ASCII names, cut to fit their frame: never inside a character
# (0, 1 and 2 ASCII bytes before the euro signs put the cut at each offset)
E=$(python3 -c "print('€' * 400)")
printf 'main;%s;a%s;aa%s 10\n' "$E" "$E" "$E" >"$T/uni.folded"
curl -s -o /dev/null --data-binary @"$T/uni.folded" "$URL/ingest?name=uni.cpu&format=folded&from=1700000000"
curl -s "$API/merge?service=uni&type=cpu&from=0&to=now&format=svg" >"$T/uni.svg"
check "an svg with cut non-ASCII names parses" \
    python3 -c "import xml.etree.ElementTree as E; E.parse('$T/uni.svg')"
# a name that is not UTF-8 at all (a Latin-1 symbol): shown, replaced
printf 'main;caf\xe9;x\xff\xc3 10\n' >"$T/latin.folded"
curl -s -o /dev/null --data-binary @"$T/latin.folded" "$URL/ingest?name=latin.cpu&format=folded&from=1700000000"
curl -s "$API/merge?service=latin&type=cpu&from=0&to=now&format=svg" >"$T/latin.svg"
check "an svg of names that are not UTF-8 parses" \
    python3 -c "import xml.etree.ElementTree as E; E.parse('$T/latin.svg')"
# and the top table as JSON: UTF-8, each bad byte U+FFFD (it passed them
# through, which no strict JSON reader takes)
curl -s "$API/merge?service=latin&type=cpu&from=0&to=now&format=json" >"$T/latin.json"
assert_eq "format=json of names that are not UTF-8: strict UTF-8 JSON, bytes replaced" \
    "caf\ufffd main x\ufffd\ufffd" "$(python3 -c '
import json, sys
j = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
def names(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("name", "function") and isinstance(x, str): yield x
            else: yield from names(x)
    elif isinstance(v, list):
        for x in v: yield from names(x)
print(" ".join(sorted(set(names(j)))).encode("unicode_escape").decode())' "$T/latin.json" 2>&1)"
check "the server survived" curl -sf -o /dev/null "$URL/api/0/version"
curl -s "$API?service=vw&type=cpu&from=0&to=now" >"$T/after.json"
check "the store is unchanged by the refusals" cmp -s "$T/before.json" "$T/after.json"

stop_server
t_done
