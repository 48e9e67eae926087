#!/usr/bin/env python3
"""measure.py PLUGIN...: what each plugin binary weighs (docs/using.md).

For every binary: file size (and stripped size), the size of every file the
running plugin maps (the binary and its shared objects), start time (exec to the
go-plugin handshake line on stdout, median of RUNS), resident memory once
the handshake is out, and how many shared objects the process mapped.
A binary whose name ends in -netrpc serves netrpc (GREETER_PROTO=netrpc),
the others gRPC. RUNS (default 20) runs each."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("RUNS", "20"))


def stripped_size(path):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "s")
        shutil.copy(path, out)
        subprocess.run(["strip", out], check=True)
        return os.path.getsize(out)


def one_run(path):
    env = dict(os.environ, GREETER_PLUGIN="8d1f3c", PLUGIN_PROTOCOL_VERSIONS="1",
               GREETER_PROTO="netrpc" if path.endswith("-netrpc") else "grpc")
    t0 = time.monotonic()
    p = subprocess.Popen([path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = p.stdout.readline()
    t = time.monotonic() - t0
    if not line:
        p.kill()
        p.wait()
        raise SystemExit("%s: no handshake line" % path)
    with open("/proc/%d/status" % p.pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open("/proc/%d/maps" % p.pid) as f:
        files = {l.split()[-1] for l in f if l.split()[-1].startswith("/")}
    sos = {x for x in files if ".so" in os.path.basename(x)}
    mapped = sum(os.path.getsize(x) for x in files if os.path.exists(x))
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return t, rss, len(sos), mapped


def human(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e6 else "%d kB" % (n / 1e3)


def main():
    print("| plugin | size | stripped | with its shared objects | start (median) | RSS | shared objects |")
    print("|---|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        runs = [one_run(path) for _ in range(RUNS)]
        start = statistics.median(r[0] for r in runs) * 1000
        rss = statistics.median(r[1] for r in runs)
        print("| %s | %s | %s | %s | %.1f ms | %.1f MB | %d |" % (
            path, human(os.path.getsize(path)), human(stripped_size(path)),
            human(runs[-1][3]), start, rss / 1024, runs[-1][2]))


if __name__ == "__main__":
    main()
