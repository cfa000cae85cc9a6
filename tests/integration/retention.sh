#!/usr/bin/env bash
# tests/integration/retention.sh — `serve --retention 2h` deletes exactly the
# profiles whose created_at is older than 2 h, and gives the space back.
#
# Profiles are made with known created_at (tests/tools/pprof_retime.py sets
# time_nanos; traces take ?created_at=): old ones from 2h05m to 3 days ago,
# young ones from 1h55m ago to now, of several types, services and labels,
# with large traces among the old ones so that their deletion frees
# megabytes.  The store is filled by a server without retention, which is
# then restarted with --retention 2h.  Checks: every old id answers 404,
# every young id answers 200 with identical bytes and unchanged metadata,
# the listings hold exactly the young ids, and after a clean stop the data
# directory is smaller by at least half of the deleted bytes (figures for
# the database size and PRAGMA freelist_count are printed).
. "${TESTS_DIR:?TESTS_DIR must point to tests/}/lib.sh" || exit 1
t_init

DATA=$T/data
P=$T/profiles
mkdir -p "$P"
NOW=$(date +%s)

# Make the profiles: "NAME|SERVICE|TYPE|LABELS|CREATED|AGE" per line ('|', not
# a tab: `read` would merge the tabs around an empty field).
python3 - "$FIXTURES" "$P" "$NOW" > "$T/plan" <<'PY'
import os, random, sys
import pprof_retime
fixtures, out, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(7)
types = ["cpu", "heap", "block", "mutex", "goroutine", "threadcreate"]
src = {t: sorted(f for f in os.listdir(fixtures) if f.startswith(t + "_")) for t in types}
src["mutex"].remove("mutex_000.pb.gz")   # no samples: not a storable profile

def emit(i, age, created):
    t = types[i % len(types)]
    name = "p%03d.pb.gz" % i
    with open(os.path.join(fixtures, src[t][i % len(src[t])]), "rb") as f:
        data = pprof_retime.retime(f.read(), created)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print("%s|ret-%d|%s|k=v%d|%d|%s" % (name, i % 3, t, i % 4, created, age))

i = 0
for _ in range(90):      # old: 2h05m .. 3 days ago
    emit(i, "old", now - 7500 - random.randrange(3 * 86400 - 7500)); i += 1
for _ in range(30):      # young: now .. 1h55m ago
    emit(i, "young", now - random.randrange(6900)); i += 1
emit(i, "old", now - 7200 - 300); i += 1   # just over the edge, either side
emit(i, "young", now - 7200 + 300); i += 1
# traces (never parsed; created_at from the query): 12 old ones of 400 KB
for k in range(14):
    name = "t%03d.trace" % k
    with open(os.path.join(out, name), "wb") as f:
        f.write(os.urandom(400_000 if k < 12 else 20_000))
    age = "old" if k < 12 else "young"
    created = now - 4 * 3600 - k if age == "old" else now - 600 - k
    print("%s|ret-trace|trace||%d|%s" % (name, created, age))
PY
n_old=$(awk -F'|' '$6 == "old"' "$T/plan" | wc -l)
n_young=$(awk -F'|' '$6 == "young"' "$T/plan" | wc -l)
old_bytes=$(awk -F'|' -v p="$P" '$6 == "old" { print p "/" $1 }' "$T/plan" | xargs stat -c %s | awk '{ s += $1 } END { print s }')
echo "retention: $n_old old profiles ($old_bytes bytes), $n_young young ones"

# ---- fill without retention -----------------------------------------------------------
start_server --quiet || t_done
# One Python for all the ingests (two per profile in the shell took a minute
# on a loaded machine): "ID|NAME|SERVICE|TYPE|LABELS|CREATED|AGE" per line.
python3 - "$URL" "$P" "$T/plan" > "$T/ids" 2>"$T/ingest.err" <<'PY'
import json, sys, urllib.error, urllib.parse, urllib.request
base, pdir, plan = sys.argv[1:4]
for line in open(plan):
    name, service, ptype, labels, created, age = line.rstrip("\n").split("|")
    q = {"service": service, "type": ptype}
    if labels:
        q["labels"] = labels
    if ptype == "trace":
        q["created_at"] = created
    req = urllib.request.Request(base + "/api/0/profiles?" + urllib.parse.urlencode(q),
                                 data=open(pdir + "/" + name, "rb").read(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            pid = json.load(r)["body"]["id"]
    except (urllib.error.URLError, ValueError, KeyError) as e:
        print("ingest of %s: %s" % (name, e), file=sys.stderr)
        continue
    print("|".join([pid, name, service, ptype, labels, created, age]))
PY
[ -s "$T/ingest.err" ] && fail "$(head -c 300 "$T/ingest.err")"
assert_eq "all ingested" $(( n_old + n_young )) "$(wc -l < "$T/ids")"
stop_server TERM

DB=$(db_file)
check "database file found" [ -n "$DB" ]
dir_before=$(du -sb "$DATA" | cut -f1)
db_before=$(stat -c %s "$DB")
echo "retention: before: data dir $dir_before bytes, db $db_before bytes, freelist $(sqlite3 "$DB" 'PRAGMA freelist_count')"

# ---- restart with retention ------------------------------------------------------------------
start_server --retention 2h --quiet || t_done
# Retention runs at start; wait until the old ones are gone (or 30 s).
last_old=$(awk -F'|' '$7 == "old" { id = $1 } END { print id }' "$T/ids")
for ((i = 0; i < 300; i++)); do
    http GET "$URL/api/0/profiles/$last_old"
    [ "$HTTP_STATUS" = 404 ] && break
    sleep 0.1
done
echo "retention: old profiles gone after $(( i / 10 )).$(( i % 10 )) s"

python3 - "$URL" "$T/ids" "$P" <<'PY' > "$T/verify" 2>&1
import json, sys
from profefe_api import get, find
base, idsf, pdir = sys.argv[1:4]
bad = []

rows = [l.rstrip("\n").split("|") for l in open(idsf)]
for pid, name, service, ptype, labels, created, age in rows:
    st, data = get(base, "/api/0/profiles/" + pid)
    if age == "old" and st != 404:
        bad.append("old %s (%s, created %s) still there: HTTP %d" % (pid, name, created, st))
    if age == "young":
        if st != 200:
            bad.append("young %s (%s, created %s) gone: HTTP %d" % (pid, name, created, st))
        elif data != open(pdir + "/" + name, "rb").read():
            bad.append("young %s (%s) changed" % (pid, name))

# listings: exactly the young ids, with unchanged metadata
groups = {}
for r in rows:
    groups.setdefault((r[2], r[3]), []).append(r)
for (service, ptype), rs in sorted(groups.items()):
    st, body = find(base, service, ptype)
    listed = {m["id"]: m for m in json.loads(body)["body"]} if st == 200 else {}
    want = {r[0]: r for r in rs if r[6] == "young"}
    if set(listed) != set(want):
        bad.append("%s/%s lists %d ids, want the %d young ones (extra %s, missing %s)"
                   % (service, ptype, len(listed), len(want),
                      sorted(set(listed) - set(want))[:3], sorted(set(want) - set(listed))[:3]))
    for pid, r in want.items():
        m = listed.get(pid)
        if m is None:
            continue
        labels = {l["key"]: l["value"] for l in (m.get("labels") or [])}
        wl = dict([r[4].split("=", 1)]) if r[4] else {}
        if labels != wl or m["service"] != service or m["type"] != ptype:
            bad.append("metadata of %s changed: %r" % (pid, m))
print("checked %d ids" % len(rows))
for b in bad[:20]:
    print("BAD:", b)
sys.exit(1 if bad else 0)
PY
vrc=$?
cat "$T/verify"
check "retention deleted exactly the old profiles" [ "$vrc" = 0 ]
grep -q 'retention: deleted' "$SERVER_LOG" && ok || fail "no 'retention: deleted' line in the log"
grep 'retention' "$SERVER_LOG" | head -n 3
stop_server TERM

dir_after=$(du -sb "$DATA" | cut -f1)
db_after=$(stat -c %s "$DB")
echo "retention: after: data dir $dir_after bytes, db $db_after bytes, freelist $(sqlite3 "$DB" 'PRAGMA freelist_count') pages of $(sqlite3 "$DB" 'PRAGMA page_size') bytes"
check "space reclaimed: data dir shrank by $(( dir_before - dir_after )) >= half of $old_bytes deleted bytes" \
    [ $(( dir_before - dir_after )) -ge $(( old_bytes / 2 )) ]
assert_eq "integrity after retention" ok "$(db_integrity "$DB")"
t_done
