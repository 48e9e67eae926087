#!/usr/bin/env python3
"""bench/run.sh's table: medians of runs.jsonl, and the issue-15 targets.

    summary.py RUNS.jsonl [--reps N] [--lat-n N] [--size B] [--tput-n N]
               [--tput-c T] [--start-n N] [--big-size B] [--pin-cpu C]

Wire-generic: every figure is computed the same way for each proto; the
targets are data (TARGETS below).
"""
import argparse
import json
import os
import statistics

# The issue-15 targets per wire. kind: "floor" (C p50 <= x * floor),
# "ratio_ge" (Go / C >= x), "ratio_le" (C / Go <= x), "max" (C <= x).
TARGETS = {
    "netrpc": [
        ("pinned Get p50 <= 2x same-CPU floor", "floor", ("pinned", "lat_us_p50", "same-cpu"), 2.0),
        ("pinned Get p50 Go/C >= 3", "ratio_ge", ("pinned", "lat_us_p50"), 3.0),
        ("unpinned Get p50 <= 1.2x scheduler floor", "floor", ("unpinned", "lat_us_p50", "scheduler"), 1.2),
        ("per-call CPU C/Go <= 0.5 (unpinned)", "ratio_le", ("unpinned", "cpu_us_per_call"), 0.5),
        ("per-call CPU C/Go <= 0.5 (pinned)", "ratio_le", ("pinned", "cpu_us_per_call"), 0.5),
        ("8-thread throughput C/Go >= 2 (unpinned)", "ratio_ge_c", ("unpinned", "calls_per_s"), 2.0),
        ("plugin peak RSS <= 1536 KiB", "max", ("unpinned", "plugin_rss_peak_kib"), 1536),
        ("exec -> first Get p50 <= 1 ms", "max", ("unpinned", "startup_ms_p50"), 1.0),
        ("1 MiB Get p50 C/Go <= 0.5 (unpinned)", "ratio_le", ("unpinned", "big_us_p50"), 0.5),
    ],
    "grpc": [
        ("pinned Get p50 <= 4x same-CPU floor", "floor", ("pinned", "lat_us_p50", "same-cpu"), 4.0),
        ("pinned Get p50 Go/C >= 3", "ratio_ge", ("pinned", "lat_us_p50"), 3.0),
        ("per-call CPU C/Go <= 0.5 (unpinned)", "ratio_le", ("unpinned", "cpu_us_per_call"), 0.5),
        ("per-call CPU C/Go <= 0.5 (pinned)", "ratio_le", ("pinned", "cpu_us_per_call"), 0.5),
        ("8-thread throughput C/Go >= 2 (unpinned)", "ratio_ge_c", ("unpinned", "calls_per_s"), 2.0),
        ("plugin peak RSS <= 6144 KiB", "max", ("unpinned", "plugin_rss_peak_kib"), 6144),
        ("1 MiB Get p50 C/Go <= 0.5 (unpinned)", "ratio_le", ("unpinned", "big_us_p50"), 0.5),
    ],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--lat-n", type=int, default=20000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--tput-n", type=int, default=80000)
    ap.add_argument("--tput-c", type=int, default=8)
    ap.add_argument("--start-n", type=int, default=20)
    ap.add_argument("--big-size", type=int, default=1048576)
    ap.add_argument("--pin-cpu", default="0")
    a = ap.parse_args()
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]

    def sel(proto, placement, pair, mode, size=None):
        out = []
        for r in runs:
            x = r["run"]
            if r["proto"] != proto or r["placement"] != placement or r["pair"] != pair:
                continue
            if x.get("mode") != mode:
                continue
            if size is not None and x.get("size") != size:
                continue
            out.append(r)
        return out

    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    # Per proto, placement, pair: the figures (medians over repetitions).
    def figures(proto, placement, pair):
        lat = sel(proto, placement, pair, "latency", a.size)
        big = sel(proto, placement, pair, "latency", a.big_size)
        tput = sel(proto, placement, pair, "throughput")
        start = sel(proto, placement, pair, "startup")
        f = {}
        for k in ("lat_us_p50", "lat_us_p99", "lat_us_mean"):
            f[k] = med([r["run"][k] for r in lat])
        f["big_us_p50"] = med([r["run"]["lat_us_p50"] for r in big])
        f["calls_per_s"] = med([r["run"]["calls_per_s"] for r in tput])
        f["startup_ms_p50"] = med([r["run"]["startup_ms_p50"] for r in start])
        rss = [r["run"]["plugin_rss_peak_kib"] for r in lat + start]
        f["plugin_rss_peak_kib"] = max(rss) if rss else None
        # One start's CPU from the startup runs of the same repetition.
        per_start = {r["rep"]: r["run"]["cpu_s"] / max(1, r["run"]["n"]) for r in start}
        cpu = []
        for r in lat:
            s = per_start.get(r["rep"], 0.0)
            cpu.append((r["run"]["cpu_s"] - s) * 1e6 / r["run"]["n"])
        f["cpu_us_per_call"] = med(cpu)
        tcpu = [r["run"]["cpu_s"] * 1e6 / r["run"]["n"] for r in tput]
        f["tput_cpu_us_per_call"] = med(tcpu)
        return f

    floors = {}
    for name in ("same-cpu", "cross-cpu", "scheduler"):
        v = [r["run"]["lat_us_p50"] for r in runs if r["pair"] == "raw" and r["placement"] == name]
        floors[name] = med(v)

    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float) and v < 100:
            return "%.2f" % v if v < 10 else "%.1f" % v
        return "%.0f" % v

    protos = []
    for r in runs:
        if r["proto"] and r["proto"] not in protos:
            protos.append(r["proto"])
    print("goplugin-c bench (issue 15): %s repetitions interleaved (medians), %s CPUs, %s"
          % (a.reps, os.cpu_count(), os.uname().release))
    print("latency: -n %d --size %d; 1 MiB: --size %d; throughput: -n %d -c %d; startup: -n %d;"
          " pinned = taskset -c %s for host and plugin"
          % (a.lat_n, a.size, a.big_size, a.tput_n, a.tput_c, a.start_n, a.pin_cpu))
    print()
    print("floor, 64 B socketpair round trip p50 (us): same CPU %s, two CPUs %s, scheduler-placed %s"
          % (fmt(floors["same-cpu"]), fmt(floors["cross-cpu"]), fmt(floors["scheduler"])))

    rows = [
        ("Get %d B p50 (us)" % a.size, "lat_us_p50"),
        ("Get %d B p99 (us)" % a.size, "lat_us_p99"),
        ("Get %d B mean (us)" % a.size, "lat_us_mean"),
        ("CPU per Get, both processes (us)", "cpu_us_per_call"),
        ("Get %d B p50 (us)" % a.big_size, "big_us_p50"),
        ("%d-thread throughput (calls/s)" % a.tput_c, "calls_per_s"),
        ("CPU per call at %d threads (us)" % a.tput_c, "tput_cpu_us_per_call"),
        ("exec -> first Get p50 (ms)", "startup_ms_p50"),
        ("plugin peak RSS (KiB)", "plugin_rss_peak_kib"),
    ]
    all_fig = {}
    for proto in protos:
        for placement in ("pinned", "unpinned"):
            g = figures(proto, placement, "go")
            c = figures(proto, placement, "c")
            all_fig[(proto, placement)] = (g, c)
            if all(v is None for v in list(g.values()) + list(c.values())):
                continue
            print()
            print("%s, %s" % (proto, placement))
            print("  %-36s %10s %10s %7s %7s" % ("metric", "Go<->Go", "C<->C", "C/Go", "Go/C"))
            for label, k in rows:
                gv, cv = g[k], c[k]
                r1 = "%.2f" % (cv / gv) if gv and cv is not None else "-"
                r2 = "%.2f" % (gv / cv) if cv and gv is not None else "-"
                print("  %-36s %10s %10s %7s %7s" % (label, fmt(gv), fmt(cv), r1, r2))
        g = med([r["run"]["plugin_rss_peak_kib"] for r in sel(proto, "unpinned", "c-host/go-plugin", "latency")])
        c = med([r["run"]["plugin_rss_peak_kib"] for r in sel(proto, "unpinned", "go-host/c-plugin", "latency")])
        if g is not None or c is not None:
            print("  plugin peak RSS under the other stack's host (KiB): Go plugin %s, C plugin %s"
                  % (fmt(g), fmt(c)))

    print()
    for proto in protos:
        for placement in ("pinned", "unpinned"):
            c = all_fig.get((proto, placement), ({}, {}))[1].get("lat_us_p50")
            if c is None:
                continue
            parts = ["%.2fx %s" % (c / floors[k], k) for k in ("same-cpu", "cross-cpu", "scheduler")
                     if floors.get(k)]
            print("%s %s C<->C Get p50 %s us = %s floor" % (proto, placement, fmt(c), ", ".join(parts)))

    print()
    print("targets (issue 15)")
    print("  %-44s %10s %10s  %s" % ("target", "measured", "limit", "verdict"))
    for proto in protos:
        for label, kind, key, x in TARGETS.get(proto, []):
            placement, field = key[0], key[1]
            g, c = all_fig.get((proto, placement), ({}, {}))
            gv, cv = g.get(field), c.get(field)
            val = None
            if kind == "floor":
                fl = floors.get(key[2])
                val = cv / fl if cv is not None and fl else None
                shown, limit, ok = ("%.2fx" % val if val is not None else "-"), "%.1fx" % x, val is not None and val <= x
            elif kind == "ratio_ge":  # Go / C (latency: higher is better for C)
                val = gv / cv if gv is not None and cv else None
                shown, limit, ok = ("%.2f" % val if val is not None else "-"), ">= %.1f" % x, val is not None and val >= x
            elif kind == "ratio_ge_c":  # C / Go (throughput)
                val = cv / gv if cv is not None and gv else None
                shown, limit, ok = ("%.2f" % val if val is not None else "-"), ">= %.1f" % x, val is not None and val >= x
            elif kind == "ratio_le":
                val = cv / gv if cv is not None and gv else None
                shown, limit, ok = ("%.2f" % val if val is not None else "-"), "<= %.2f" % x, val is not None and val <= x
            else:
                if cv is None:  # an absolute figure: any placement will do
                    other = "pinned" if placement == "unpinned" else "unpinned"
                    cv = all_fig.get((proto, other), ({}, {}))[1].get(field)
                val = cv
                shown, limit, ok = fmt(cv), "<= %s" % fmt(float(x)), cv is not None and cv <= x
            verdict = "met" if ok else ("not met" if val is not None else "not measured")
            print("  %-44s %10s %10s  %s" % ("%s: %s" % (proto, label), shown, limit, verdict))


if __name__ == "__main__":
    main()
