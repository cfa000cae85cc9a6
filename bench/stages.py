#!/usr/bin/env python3
"""stages.py — splits the server's CPU samples of an ingest run by stage.

    perf script -F comm,ip,sym,dso -i perf.data | stages.py

Reads perf's samples (with call chains; user stacks without frame pointers
stop at the first library frame, which is enough: the kernel frames and the
first user frame say what a thread was doing) and prints one line,
"stage=share ..." with shares of all samples, stages in a fixed order:
  http        libmicrohttpd, socket reads/writes/poll and the handler's own
              code in the connection threads
  inflate     libdeflate
  validation  pprof_* (decode and checks of the profile)
  sqlite      SQLite's code in the writer (triggers, b-trees)
  commit_io   pwrite/fdatasync and the block layer (the durable commit)
  wait        futexes, semaphores, poll wake-ups and the scheduler: handing
              a request to the writer and its answer back
  alloc       malloc/free
  ckpt        the checkpoint thread
  other       the rest
"""
import re
import sys

STAGES = ["http", "inflate", "validation", "sqlite", "commit_io", "wait",
          "alloc", "ckpt", "other"]


def classify(comm, frames):
    kernel = [s for s, d in frames if "kernel" in d]
    user = [(s, d) for s, d in frames if "kernel" not in d]
    leaf_sym, leaf_dso = user[0] if user else ("", "")
    ktext = " ".join(kernel)
    if comm.startswith("store-ckpt"):
        return "ckpt"
    if re.search(r"fdatasync|fsync|pwrite|ext4|blk_|iowrite|virtio|jbd2",
                 ktext + " " + leaf_sym):
        return "commit_io"
    if "libdeflate" in leaf_dso:
        return "inflate"
    if leaf_sym.startswith("pprof_") or leaf_sym.startswith("varint"):
        return "validation"
    if "libsqlite3" in leaf_dso or leaf_sym.startswith("sqlite3"):
        return "sqlite"
    if re.search(r"malloc|free|calloc|realloc|_int_", leaf_sym):
        return "alloc"
    if re.search(r"futex|sem_|pthread_cond|pthread_mutex|schedule|"
                 r"finish_task_switch|try_to_wake", ktext + " " + leaf_sym):
        return "wait"
    if comm.startswith("MHD") or "microhttpd" in leaf_dso or re.search(
            r"tcp|sock|recv|send|poll|inet|ip_|skb|net_", ktext + " " + leaf_sym):
        return "http"
    return "other"


def main():
    counts = dict.fromkeys(STAGES, 0)
    comm, frames = None, []
    for line in list(sys.stdin) + [""]:
        if not line.strip():
            if comm is not None:
                counts[classify(comm, frames)] += 1
            comm, frames = None, []
            continue
        if not line.startswith(("\t", " ")) or comm is None and not line.startswith("\t"):
            if comm is None:
                comm = line.strip()
                continue
        m = re.match(r"\s+[0-9a-f]+\s+(\S+).*\((.*)\)\s*$", line)
        if m:
            frames.append((m.group(1), m.group(2)))
    total = sum(counts.values()) or 1
    print(" ".join("%s=%.3f" % (s, counts[s] / total) for s in STAGES))


if __name__ == "__main__":
    main()
