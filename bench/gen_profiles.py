#!/usr/bin/env python3
"""gen_profiles.py — make N retimed copies of the CPU fixtures for scripts/bench.

    gen_profiles.py FIXTURES_DIR OUT_DIR N BASE_UNIX STEP_SECONDS

Writes OUT_DIR/p00000.pb.gz ... with file i a copy of cpu_<i mod k>.pb.gz
whose time_nanos is BASE_UNIX + i*STEP_SECONDS, so every profile has a
distinct created_at once stored.  The rewrite is tests/tools/pprof_retime.py's
(imported, not re-implemented); doing it in one process instead of one python
per file keeps generating 20,000 files to a few seconds.  Existing files with
the right name are kept, so re-runs are cheap.
"""
import glob
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in tests/tools
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "tools"))
from pprof_retime import retime  # noqa: E402


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    fixtures, out, n, base, step = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                    int(sys.argv[4]), int(sys.argv[5]))
    srcs = []
    for path in sorted(glob.glob(os.path.join(fixtures, "cpu_*.pb.gz"))):
        with open(path, "rb") as f:
            srcs.append(f.read())
    if not srcs:
        sys.exit("gen_profiles: no cpu_*.pb.gz in " + fixtures)
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        name = os.path.join(out, "p%05d.pb.gz" % i)
        if os.path.exists(name):
            continue
        tmp = name + ".tmp"
        with open(tmp, "wb") as f:
            f.write(retime(srcs[i % len(srcs)], base + i * step))
        os.rename(tmp, name)


if __name__ == "__main__":
    main()
