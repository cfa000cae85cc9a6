#!/usr/bin/env python3
"""canon.py — canonical text of a pprof profile, to compare merges.

Usage: canon.py FILE            (needs `go`; $GO overrides the command)

Reads FILE through `go tool pprof -raw FILE` (so it also proves that Go's
pprof can read it) and prints:
  - a header: sample types, period type, period, time, duration, comments;
  - one line per sample, sorted:
        VALUES | STACK | LABELS | NUMLABELS
    STACK lists the locations leaf first, separated by " < "; a location is
    ADDR@MAPPING name:file:line(;name:file:line for inlined frames), with
    ADDR relative to the start of its mapping and MAPPING the mapping's file
    (or build id), so ids, orders and load addresses do not matter.
Two profiles with the same canonical text hold the same data up to ids and
ordering.  Python 3 standard library only.
"""
import os
import re
import subprocess
import sys

LOC_RE = re.compile(r"^\s*(\d+): (0x[0-9a-f]+) (M=(\d+) )?(\[F\] )?(.*)$")
FRAME_RE = re.compile(r"^(.*) (.*):(-?\d+) s=(-?\d+)(\(.*\))?$")
MAP_RE = re.compile(r"^(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) (.*)$")
SAMPLE_RE = re.compile(r"^\s*((?:-?\d+\s+)*-?\d+): ([\d ]*)$")
NUMLIST_RE = re.compile(r"^\S+:\[(-?\d+( \S*)?( -?\d+( \S*)?)*)?\]$")


def raw(path):
    cmd = [os.environ.get("GO", "go"), "tool", "pprof", "-raw", path]
    env = dict(os.environ, TZ="UTC")
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, check=False)
    if res.returncode != 0:
        sys.stderr.write(res.stderr.decode(errors="replace"))
        sys.exit("canon.py: go tool pprof -raw %s failed" % path)
    return res.stdout.decode(errors="replace").split("\n")


def frame(text):
    """'name file:line s=N(sys)' -> 'name:file:line'."""
    if text == "??":
        return "??"
    m = FRAME_RE.match(text)
    if not m:
        return text
    name, file, line = m.group(1), m.group(2), m.group(3)
    return "%s:%s:%s" % (name, file, line) + (m.group(5) or "")


def is_numeric(line):
    """A label line whose every key:[...] lists integers (with units)."""
    items = re.findall(r"\S+:\[[^\]]*\]", line)
    return bool(items) and all(NUMLIST_RE.match(i) for i in items)


def parse(lines):
    header, samples, locs, maps = [], [], {}, {}
    section, cur, last_loc = "header", None, None
    for ln in lines:
        if not ln.strip():
            continue
        if section == "header":
            if ln == "Samples:":
                section = "types"
            else:
                header.append(ln)
            continue
        if section == "types":
            header.append("SampleTypes: " + ln)
            section = "samples"
            continue
        if ln == "Locations":
            section = "locations"
            continue
        if ln == "Mappings":
            section = "mappings"
            continue
        if section == "samples":
            m = SAMPLE_RE.match(ln)
            if m:
                cur = {"values": " ".join(m.group(1).split()),
                       "locs": m.group(2).split(), "labels": []}
                samples.append(cur)
            else:
                cur["labels"].append(ln.strip())
        elif section == "locations":
            m = LOC_RE.match(ln)
            if m:
                last_loc = m.group(1)
                locs[last_loc] = {"addr": int(m.group(2), 16),
                                  "map": m.group(4),
                                  "folded": bool(m.group(5)),
                                  "frames": [frame(m.group(6))] if m.group(6) else []}
            else:  # an inlined frame of the previous location
                locs[last_loc]["frames"].append(frame(ln.strip()))
        elif section == "mappings":
            m = MAP_RE.match(ln)
            if m:
                rest = m.group(5).split(" ")
                name = rest[0] if rest[0] else (rest[1] if len(rest) > 1 else "")
                maps[m.group(1)] = {"start": int(m.group(2), 16), "name": name}
    return header, samples, locs, maps


def location(loc, maps):
    addr, where = loc["addr"], ""
    if loc["map"] is not None:
        mp = maps[loc["map"]]
        addr -= mp["start"]
        where = "@" + mp["name"]
    text = "%#x%s %s" % (addr, where, ";".join(loc["frames"]))
    return text + (" [F]" if loc["folded"] else "")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: canon.py FILE")
    header, samples, locs, maps = parse(raw(sys.argv[1]))
    out = []
    for s in samples:
        labels, numlabels = "", ""
        if len(s["labels"]) == 2:
            labels, numlabels = s["labels"]
        elif len(s["labels"]) == 1:
            if is_numeric(s["labels"][0]):
                numlabels = s["labels"][0]
            else:
                labels = s["labels"][0]
        stack = " < ".join(location(locs[i], maps) for i in s["locs"])
        out.append("%s | %s | %s | %s" % (s["values"], stack, labels, numlabels))
    for h in header:
        print(h)
    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    main()
