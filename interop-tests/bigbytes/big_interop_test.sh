#!/usr/bin/env bash
# 1 MiB `repeated bytes` elements and a 1 MiB `bytes` in a oneof (nanopb's
# pb_bytes_array_t, capped at 65535 bytes by 16-bit nanopb) against Go over
# gRPC, both ways: the C host drives the Go plugin, the Go host drives the C
# plugin. Each side checks every byte it receives (big_peer.c, PATTERN).
# Usage: big_interop_test.sh C_PEER GO_PEER
set -uo pipefail
c_peer=$1 go_peer=$2
passes=0 fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME WANT CMD...: CMD must exit 0 and print WANT on stdout.
run() {
  local name=$1 want=$2 out rc
  shift 2
  out=$(timeout 120 "$@" 2>"$tmp/err")
  rc=$?
  if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
    passes=$((passes + 1)); echo "ok   $name"
  else
    fails=$((fails + 1)); echo "FAIL $name (exit $rc)"
    echo "  stdout: $out"; sed 's/^/  stderr: /' "$tmp/err" | tail -20
  fi
}

run "C host -> Go plugin: 1 MiB chunks and oneof blob, both directions" \
  "big-peer: swapped 3+2 chunks and two blobs of about 1 MiB" "$c_peer" host "$go_peer"
run "Go host -> C plugin: 1 MiB chunks and oneof blob, both directions" \
  "go-big-peer: swapped 3+2 chunks and two blobs of about 1 MiB" "$go_peer" host "$c_peer"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
