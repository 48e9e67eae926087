#!/usr/bin/env bash
# A Go host on go-plugin 1.0.1 reattaches to a C plugin that kv-host left
# running (--detach), over grpc and netrpc: it reads the value the C host
# put, and its Kill stops the plugin.
# Usage: go_reattach_interop_test.sh GO_REATTACH_HOST KV_HOST KV_PLUGIN
set -uo pipefail
go_host=$1 host=$2 plugin=$3
fails=0 passes=0
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

for proto in grpc netrpc; do
  f=$tmp/$proto.json
  "$host" --plugin "$plugin" --proto "$proto" --detach "$f" -- put greeting "hello from C" 2>"$tmp/err"
  expect_eq "$proto: C host detaches" 0 $?
  pid=$(sed -n 's/^ *"Pid": *\([0-9]*\).*/\1/p' "$f")
  pids+=("$pid")
  out=$("$go_host" "$f" get greeting 2>"$tmp/goerr")
  rc=$?
  [ $rc -eq 0 ] || cat "$tmp/goerr"
  expect_eq "$proto: Go host (reattached) exits 0" 0 $rc
  expect_eq "$proto: Go host reattaches and reads the value" "hello from C" "$out"
  alive "$pid"; check "$proto: the plugin still runs after the Go host" $?
  out=$("$go_host" "$f" get greeting kill 2>"$tmp/goerr")
  rc=$?
  [ $rc -eq 0 ] || cat "$tmp/goerr"
  expect_eq "$proto: Go host (reattached, kill) exits 0" 0 $rc
  expect_eq "$proto: Go host reads again and kills" "hello from C" "$out"
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  alive "$pid"; expect_eq "$proto: go-plugin's Kill stopped the C plugin" 1 $?
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
