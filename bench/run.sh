#!/usr/bin/env bash
# Go<->Go against C<->C for the KV example, pinned and unpinned, interleaved
# in one run, against the issue-15 targets.
#
#   bench/run.sh [--reps N] [--proto grpc|netrpc|both] [--only go|c]
#                [--placement pinned|unpinned|both]
#
# Builds with bazel -c opt: //bench:go-bench-host and the Go plugin
# (hashicorp/go-plugin 1.0.1), //examples/kv:kv-host and :kv-plugin (or
# :kv-plugin-netrpc, built without gRPC, for netrpc), //bench:pingpong.
# Each repetition runs every measurement for both stacks back to back,
# alternating which goes first, so drift on a shared machine hits both
# alike:
#   - placements: "pinned" runs host and plugin under `taskset -c 0` (one
#     CPU: a call is CPU work plus context switches), "unpinned" lets the
#     scheduler place them;
#   - modes: latency (LAT_N gets of SIZE bytes), big (BIG_N gets of
#     BIG_SIZE), throughput (TPUT_N gets over TPUT_C threads), startup
#     (START_N times exec -> first Get);
#   - the floor, bench/pingpong: a 64-byte socketpair round trip between two
#     processes on the same CPU (--cpus 0,0), on two CPUs (0,1) and placed
#     by the scheduler.
# Per-call CPU: user+sys of host and plugin (bench/measure.py, from
# getrusage of the children) of a latency run, minus one start's CPU (the
# startup run's CPU / START_N), divided by LAT_N.
# Prints medians over the repetitions per placement, then the issue-15
# targets with met / not met. --only go (or c) runs one stack alone, without
# ratios: for trying the script, not for results.
#
# Sizes (environment): LAT_N=20000, SIZE=16, TPUT_N=80000, TPUT_C=8,
# START_N=20, BIG_N=200, BIG_SIZE=1048576. Raw JSON lines: $OUT/runs.jsonl.
set -euo pipefail

reps=5
protos=grpc
only=""
placements="pinned unpinned"
usage="usage: $0 [--reps N] [--proto grpc|netrpc|both] [--only go|c] [--placement pinned|unpinned|both]"
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --proto) protos=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --placement) placements=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case $only in "" | go | c) ;; *) echo "$0: --only: expected go or c, got '$only'" >&2; exit 2 ;; esac
case $protos in grpc | netrpc) ;; both) protos="netrpc grpc" ;; *) echo "$usage" >&2; exit 2 ;; esac
case $placements in pinned | unpinned | "pinned unpinned") ;; both) placements="pinned unpinned" ;;
  *) echo "$usage" >&2; exit 2 ;; esac
LAT_N=${LAT_N:-20000}
TPUT_N=${TPUT_N:-80000}
TPUT_C=${TPUT_C:-8}
START_N=${START_N:-20}
SIZE=${SIZE:-16}
BIG_N=${BIG_N:-200}
BIG_SIZE=${BIG_SIZE:-1048576}
PIN_CPU=${PIN_CPU:-0}

cd "$(dirname "$0")/.."
targets=(//bench:pingpong)
[ "$only" = c ] || targets+=(//bench:go-bench-host //interop-tests/go:go-kv-plugin)
if [ "$only" != go ]; then
  targets+=(//examples/kv:kv-host)
  for p in $protos; do
    # A plugin that only needs netrpc is built without gRPC (:kv-plugin-netrpc).
    case $p in netrpc) targets+=(//examples/kv:kv-plugin-netrpc) ;; grpc) targets+=(//examples/kv:kv-plugin) ;; esac
  done
fi
echo "building (bazel -c opt): ${targets[*]}" >&2
bazel build -c opt "${targets[@]}" >&2
# The opt tree, whatever the bazel-bin symlink points at now.
bin=$(bazel info -c opt bazel-bin 2>/dev/null)

go_host=$bin/bench/go-bench-host
go_plugin=$bin/interop-tests/go/go-kv-plugin
c_host=$bin/examples/kv/kv-host
pingpong=$bin/bench/pingpong
measure=bench/measure.py

OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/goplugin-c-bench.XXXXXX")}
mkdir -p "$OUT"
runs=$OUT/runs.jsonl
: >"$runs"
export BENCH_ERR=$OUT/last.err

# one PAIR HOST PLUGIN MODE ARGS...: one bench run ($proto, $placement), its
# JSON line tagged.
one() {
  local pair=$1 host=$2 plugin=$3 mode=$4 line pin=()
  shift 4
  [ "$placement" = pinned ] && pin=(--pin "$PIN_CPU")
  if ! line=$(/usr/bin/python3 "$measure" "${pin[@]}" -- "$host" --plugin "$plugin" --proto "$proto" \
    bench --mode "$mode" "$@"); then
    echo "$0: $proto $placement $pair $mode failed:" >&2
    tail -n 20 "$BENCH_ERR" >&2
    exit 1
  fi
  echo "{\"proto\":\"$proto\",\"placement\":\"$placement\",\"pair\":\"$pair\",\"rep\":$rep,\"run\":$line}" >>"$runs"
  printf '.' >&2
}

floor() {
  local name=$1 line
  shift
  line=$("$pingpong" "$LAT_N" "$@")
  echo "{\"proto\":\"\",\"placement\":\"$name\",\"pair\":\"raw\",\"rep\":$rep,\"run\":$line}" >>"$runs"
}

# A repetition: every measurement for each stack in $order.
measure() {
  local pair host plugin c_plugin
  # The floors, in the same minute as the rest.
  floor same-cpu --cpus "$PIN_CPU,$PIN_CPU"
  floor cross-cpu --cpus 0,1
  floor scheduler
  for proto in $protos; do
    c_plugin=$bin/examples/kv/kv-plugin
    [ "$proto" = netrpc ] && c_plugin=$bin/examples/kv/kv-plugin-netrpc
    for placement in $placements; do
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
    done
    # Both plugins under the same host, for the plugin RSS (unpinned).
    if [ -z "$only" ]; then
      placement=unpinned
      one go-host/c-plugin "$go_host" "$c_plugin" latency -n 2000 --size "$SIZE"
      one c-host/go-plugin "$c_host" "$go_plugin" latency -n 2000 --size "$SIZE"
    fi
  done
}

echo "running $reps repetitions: $protos, $placements (raw: $runs)" >&2
for rep in $(seq 1 "$reps"); do
  case $only in
    go) order=go ;;
    c) order=c ;;
    *) if [ $((rep % 2)) -eq 1 ]; then order="go c"; else order="c go"; fi ;;
  esac
  measure
done
echo >&2

/usr/bin/python3 bench/summary.py "$runs" --reps "$reps" --lat-n "$LAT_N" --size "$SIZE" \
  --tput-n "$TPUT_N" --tput-c "$TPUT_C" --start-n "$START_N" --big-size "$BIG_SIZE" \
  --pin-cpu "$PIN_CPU"
echo
echo "raw runs: $runs"
