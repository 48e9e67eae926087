#!/usr/bin/env python3
"""Runs one bench command and prints its JSON line with the CPU it cost.

    measure.py [--pin CPUS] -- HOST ARGS...

The host's last stdout line must be one JSON object. Added fields:
cpu_s, the user+sys seconds of every process the command ran and waited
for (the host and the plugin it started: both hosts reap their plugin),
from getrusage(RUSAGE_CHILDREN) before and after; wall_s; pin, the CPU
list given to taskset ("" unpinned; the plugin inherits the host's
affinity). The host's stderr goes to $BENCH_ERR (a file) when set.
"""
import json
import os
import resource
import subprocess
import sys
import time


def main(argv):
    pin = ""
    if len(argv) >= 2 and argv[0] == "--pin":
        pin, argv = argv[1], argv[2:]
    if not argv or argv[0] != "--":
        print("usage: measure.py [--pin CPUS] -- HOST ARGS...", file=sys.stderr)
        return 2
    cmd = argv[1:]
    if pin:
        cmd = ["taskset", "-c", pin] + cmd
    err_path = os.environ.get("BENCH_ERR")
    err = open(err_path, "w") if err_path else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if err:
        err.close()
    if p.returncode != 0:
        print("measure.py: %s exited %d" % (" ".join(cmd), p.returncode), file=sys.stderr)
        return 1
    lines = p.stdout.decode(errors="replace").strip().splitlines()
    try:
        rec = json.loads(lines[-1])
    except (IndexError, ValueError):
        print("measure.py: expected a JSON line, got %r" % (lines[-1:] or ""), file=sys.stderr)
        return 1
    rec["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rec["wall_s"] = wall
    rec["pin"] = pin
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
