#!/usr/bin/env bash
# Go<->Go against C<->C for the KV example, interleaved in one run.
#
#   bench/run.sh [--reps N] [--proto grpc|netrpc] [--only go|c]
#
# Builds with bazel -c opt: //bench:go-bench-host and the Go plugin
# (hashicorp/go-plugin 1.0.1), //examples/kv:kv-host and :kv-plugin. Each
# repetition runs every measurement for both stacks back to back, alternating
# which goes first, so drift on this shared machine hits both alike. Prints
# the medians over the repetitions, the ratio C/Go and the issue's target.
# The plugin RSS is also measured with both plugins under the same host (the
# target's definition). --only go (or c) runs one stack alone, without
# ratios: for trying the script, not for results.
#
# Sizes (environment): LAT_N=20000 gets of SIZE=16 bytes; TPUT_N=80000 gets
# over TPUT_C=8 threads; START_N=20 starts. Raw JSON lines: $OUT/runs.jsonl.
set -euo pipefail

reps=5
proto=grpc
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --proto) proto=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--proto grpc|netrpc] [--only go|c]" >&2; exit 2 ;;
  esac
done
case $only in "" | go | c) ;; *) echo "$0: --only: expected go or c, got '$only'" >&2; exit 2 ;; esac
LAT_N=${LAT_N:-20000}
TPUT_N=${TPUT_N:-80000}
TPUT_C=${TPUT_C:-8}
START_N=${START_N:-20}
SIZE=${SIZE:-16}
BIG_N=${BIG_N:-200}
BIG_SIZE=${BIG_SIZE:-1048576}

cd "$(dirname "$0")/.."
targets=()
[ "$only" = c ] || targets+=(//bench:go-bench-host //interop-tests/go:go-kv-plugin)
# A plugin that only needs netrpc is built without gRPC (:kv-plugin-netrpc).
c_plugin_target=kv-plugin
[ "$proto" = netrpc ] && c_plugin_target=kv-plugin-netrpc
[ "$only" = go ] || targets+=(//examples/kv:kv-host //examples/kv:$c_plugin_target)
targets+=(//bench:pingpong)
echo "building (bazel -c opt): ${targets[*]}" >&2
bazel build -c opt "${targets[@]}" >&2
# The opt tree, whatever the bazel-bin symlink points at now.
bin=$(bazel info -c opt bazel-bin 2>/dev/null)

go_host=$bin/bench/go-bench-host
go_plugin=$bin/interop-tests/go/go-kv-plugin
c_host=$bin/examples/kv/kv-host
c_plugin=$bin/examples/kv/$c_plugin_target
pingpong=$bin/bench/pingpong

OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/goplugin-c-bench.XXXXXX")}
runs=$OUT/runs.jsonl
: >"$runs"

# one PAIR HOST PLUGIN MODE ARGS...: one bench run, its JSON line tagged.
one() {
  local pair=$1 host=$2 plugin=$3 mode=$4 line
  shift 4
  if ! line=$("$host" --plugin "$plugin" --proto "$proto" bench --mode "$mode" "$@" 2>"$OUT/last.err" | tail -n 1); then
    echo "$0: $pair $mode failed:" >&2
    tail -n 20 "$OUT/last.err" >&2
    exit 1
  fi
  case $line in
    "{"*) ;;
    *) echo "$0: $pair $mode: expected one JSON line, got '$line'" >&2; tail -n 20 "$OUT/last.err" >&2; exit 1 ;;
  esac
  echo "{\"pair\":\"$pair\",\"rep\":$rep,\"run\":$line}" >>"$runs"
  printf '.' >&2
}

# A repetition: every measurement for each stack in $order.
measure() {
  local pair host plugin
  for mode in latency big throughput startup; do
    for pair in $order; do
      case $pair in
        go) host=$go_host plugin=$go_plugin ;;
        c) host=$c_host plugin=$c_plugin ;;
      esac
      case $mode in
        latency) one "$pair" "$host" "$plugin" latency -n "$LAT_N" --size "$SIZE" ;;
        big) one "$pair" "$host" "$plugin" latency -n "$BIG_N" --size "$BIG_SIZE" ;;
        throughput) one "$pair" "$host" "$plugin" throughput -n "$TPUT_N" --size "$SIZE" -c "$TPUT_C" ;;
        startup) one "$pair" "$host" "$plugin" startup -n "$START_N" ;;
      esac
    done
  done
  # The raw floor, in the same minute as the rest.
  line=$("$pingpong" "$LAT_N")
  echo "{\"pair\":\"raw\",\"rep\":$rep,\"run\":$line}" >>"$runs"
  # Both plugins under the same host, for the plugin RSS target.
  if [ -z "$only" ]; then
    one go-host/c-plugin "$go_host" "$c_plugin" latency -n "$LAT_N" --size "$SIZE"
    one c-host/go-plugin "$c_host" "$go_plugin" latency -n "$LAT_N" --size "$SIZE"
  fi
}

echo "running $reps repetitions, proto $proto (raw: $runs)" >&2
for rep in $(seq 1 "$reps"); do
  case $only in
    go) order=go ;;
    c) order=c ;;
    *) if [ $((rep % 2)) -eq 1 ]; then order="go c"; else order="c go"; fi ;;
  esac
  measure
done
echo >&2

/usr/bin/python3 - "$runs" "$reps" "$proto" "$LAT_N" "$SIZE" "$TPUT_N" "$TPUT_C" "$START_N" "$BIG_SIZE" <<'EOF'
import json, statistics, sys, os, subprocess
path, reps, proto, lat_n, size, tput_n, tput_c, start_n, big_size = sys.argv[1:]
runs = [json.loads(l) for l in open(path)]

def med(pair, mode, field):
    # "big" is a latency run with the large value size.
    want_size = int(big_size) if mode == "big" else None
    m = "latency" if mode == "big" else mode
    v = [r["run"][field] for r in runs if r["pair"] == pair and r["run"]["mode"] == m
         and (want_size is None and r["run"]["size"] != int(big_size) or r["run"]["size"] == want_size)]
    return statistics.median(v) if v else None

# The issues' targets, as C/Go ratios: gRPC (issue 3), netrpc (issue 4).
T = {"grpc": {"p50": "<= 0.5", "tput": ">= 1.5", "start": "<= 1.0", "rss": "<= 0.5", "big": ""},
     "netrpc": {"p50": "<= 0.25", "tput": ">= 2.0", "start": "<= 0.33", "rss": "<= 0.2", "big": "<= 1.0"}}[proto]

rows = [
    # label, mode, field, target (C/Go), better when
    ("Get %s B latency p50 (us)" % size, "latency", "lat_us_p50", T["p50"]),
    ("Get %s B latency p99 (us)" % size, "latency", "lat_us_p99", ""),
    ("Get %s B latency mean (us)" % size, "latency", "lat_us_mean", ""),
    ("Get %s B latency p50 (us)" % big_size, "big", "lat_us_p50", T["big"]),
    ("throughput, %s threads (calls/s)" % tput_c, "throughput", "calls_per_s", T["tput"]),
    ("exec -> first Get p50 (ms)", "startup", "startup_ms_p50", T["start"]),
    ("plugin peak RSS, own host (KiB)", "latency", "plugin_rss_peak_kib", T["rss"]),
    ("host peak RSS, latency (KiB)", "latency", "host_rss_peak_kib", ""),
    ("host peak RSS, throughput (KiB)", "throughput", "host_rss_peak_kib", ""),
]

def fmt(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 1000 else "%.0f" % v

print("goplugin-c bench: %s, %s repetitions interleaved (medians), %s CPUs, %s"
      % (proto, reps, os.cpu_count(), os.uname().release))
print("latency: -n %s --size %s; throughput: -n %s -c %s; startup: -n %s"
      % (lat_n, size, tput_n, tput_c, start_n))
print()
print("%-36s %12s %12s %8s  %s" % ("metric", "Go<->Go", "C<->C", "C/Go", "target"))
for label, mode, field, target in rows:
    g, c = med("go", mode, field), med("c", mode, field)
    ratio = "%.2f" % (c / g) if g and c is not None else "-"
    print("%-36s %12s %12s %8s  %s" % (label, fmt(g), fmt(c), ratio, target))

raw = [r["run"]["lat_us_p50"] for r in runs if r["pair"] == "raw"]
if raw:
    c = med("c", "latency", "lat_us_p50")
    print()
    print("raw floor: 64 B unix socketpair ping-pong between two processes, p50 %.1f us"
          % statistics.median(raw))
    if c:
        print("  C<->C Get p50 is %.2fx the floor" % (c / statistics.median(raw)))

g = med("c-host/go-plugin", "latency", "plugin_rss_peak_kib")
c = med("c", "latency", "plugin_rss_peak_kib")
g2 = med("go", "latency", "plugin_rss_peak_kib")
c2 = med("go-host/c-plugin", "latency", "plugin_rss_peak_kib")
if g is not None or c2 is not None:
    print()
    print("plugin peak RSS under the same host (KiB), target C/Go %s:" % T["rss"])
    for host, gv, cv in (("C host", g, c), ("Go host", g2, c2)):
        ratio = "%.2f" % (cv / gv) if gv and cv is not None else "-"
        print("  %-34s %12s %12s %8s" % (host, fmt(gv), fmt(cv), ratio))
EOF
