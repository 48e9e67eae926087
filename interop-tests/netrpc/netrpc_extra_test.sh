#!/usr/bin/env bash
# The C host (examples/kv:kv-host) against a go-plugin 1.0.1 KV plugin over
# netrpc, beyond kv_interop_test.sh: 1 MiB values (many yamux windows, gob
# messages over many Data frames) and 8 concurrent callers on one stub,
# every reply's size checked by kv-host's bench.
#   netrpc_extra_test.sh KV_HOST GO_KV_PLUGIN
set -uo pipefail
host=$1 plugin=$2
failed=0 passed=0
ok() { echo "ok:   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/netrpc_extra.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# expect NAME NEEDLE ARGS...: runs kv-host; stdout must contain NEEDLE.
expect() {
  local name=$1 needle=$2
  shift 2
  KV_PLUGIN_PIDFILE="$tmp/$name.pid" "$host" --plugin "$plugin" --proto netrpc --start-timeout 20 \
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  if [ "$rc" -eq 0 ] && grep -q -- "$needle" "$tmp/$name.out"; then
    ok "$name: exit 0, $(grep -o '"calls_per_s":[0-9.]*' "$tmp/$name.out")"
  else
    bad "$name: expected exit 0 and '$needle', got exit $rc, stdout '$(head -c 300 "$tmp/$name.out")'; stderr tail:"
    tail -n 15 "$tmp/$name.err" | sed 's/^/    | /'
  fi
  local pid
  pid=$(head -n 1 "$tmp/$name.pid" 2>/dev/null)
  if [ -n "$pid" ]; then
    for _ in $(seq 20); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then bad "$name: plugin pid $pid still running after the host exited"
    else ok "$name: plugin pid $pid is gone"; fi
  fi
}

expect mib '"size":1048576' bench --mode latency -n 20 --size 1048576
expect threads8 '"threads":8' bench --mode throughput -n 4000 --size 1000 -c 8
expect threads8_big '"threads":8' bench --mode throughput -n 64 --size 262144 -c 8

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
