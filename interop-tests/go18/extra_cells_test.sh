#!/usr/bin/env bash
# Cells of the go-plugin 1.6-1.8 matrix that kv_interop_test.sh,
# automtls_test.sh and counter_interop_test.sh do not cover: multiplexing,
# an inherited PLUGIN_MULTIPLEX_GRPC, AutoMTLS together with the broker. Each
# mode checks the behaviour a Go peer expects; most FAIL today (issue 11) and
# their targets are tagged "manual" until the feature lands. Usage:
#
#   extra_cells_test.sh MODE HOST PLUGIN [PROTO]
#     kv-multiplex        GO_HOST PLUGIN          1.8 host, GRPCBrokerMultiplex,
#                                                 KV plugin over grpc
#     kv-inherited-mux    C_HOST GO_PLUGIN        C host run with
#                                                 PLUGIN_MULTIPLEX_GRPC=true in
#                                                 its own environment, 1.8 plugin
#     counter-automtls    GO_HOST C_PLUGIN PROTO  Go host (1.0.1 or 1.8) with
#                                                 AutoMTLS, C counter plugin:
#                                                 the broker's connection is TLS
#     counter-multiplex   GO_HOST C_PLUGIN        1.8 host, GRPCBrokerMultiplex,
#                                                 C counter plugin
#     stdout-flood        HOST GO_PLUGIN PROTO    a Go KV plugin writes 1 MiB to
#                                                 stdout after the handshake:
#                                                 the host must drain it
set -uo pipefail
mode=${1:-}
host=${2:-} plugin=${3:-} proto=${4:-grpc}
for f in "$host" "$plugin"; do
  [ -x "$f" ] || { echo "FAIL: peer $f: expected an executable file, got none"; exit 1; }
done
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/known_gaps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passes=0 fails=0
check() { # name expected actual
  if [ "$2" == "$3" ]; then
    passes=$((passes + 1)); echo "ok   $1"
  else
    fails=$((fails + 1)); echo "FAIL $1"
    echo "  expected: $(printf %q "$2")"
    echo "  got:      $(printf %q "$3")"
    echo "  stderr (tail):"; tail -n 15 "$tmp/err" | cut -c1-300 | sed 's/^/    | /'
  fi
}

case $mode in
kv-multiplex)
  out=$("$host" --plugin "$plugin" --multiplex put a 1 put b two get a get b 2>"$tmp/err")
  rc=$?
  check "$(basename "$host") --multiplex -> $(basename "$plugin"): exit 0" 0 "$rc"
  check "$(basename "$host") --multiplex -> $(basename "$plugin"): values" $'1\ntwo' "$out"
  ;;
kv-inherited-mux)
  # A 1.8 plugin multiplexes when PLUGIN_MULTIPLEX_GRPC parses as true; the
  # host must always set it (false when it does not multiplex).
  out=$(PLUGIN_MULTIPLEX_GRPC=true "$host" --plugin "$plugin" put a 1 get a 2>"$tmp/err")
  rc=$?
  check "C host, PLUGIN_MULTIPLEX_GRPC=true inherited -> 1.8 plugin: exit 0" 0 "$rc"
  check "C host, PLUGIN_MULTIPLEX_GRPC=true inherited -> 1.8 plugin: value" 1 "$out"
  ;;
counter-automtls | counter-multiplex)
  flag=--${mode#counter-}
  out=$("$host" --plugin "$plugin" --proto "$proto" "$flag" -- put a 3 put a 4 get a put b -10 get b 2>"$tmp/err")
  rc=$?
  what="$proto: $(basename "$host") $flag -> $(basename "$plugin") -> Go AddHelper"
  check "$what: exit 0" 0 "$rc"
  check "$what: values" $'7\n-10' "$out"
  ;;
stdout-flood)
  # The plugin's os.Stdout writes go over GRPCStdio (grpc) or the stdout
  # stream (netrpc); a host that never reads them blocks the writer.
  out=$(KV_PLUGIN_STDOUT_FLOOD=1048576 "$host" --plugin "$plugin" --proto "$proto" -- \
    put a 1 get a get stdout-flood 2>"$tmp/err")
  rc=$?
  what="$proto: $(basename "$plugin") writes 1 MiB to stdout under $(basename "$host")"
  check "$what: exit 0" 0 "$rc"
  check "$what: all written, KV still answers" $'1\ndone 1048576' "$out"
  ;;
*)
  echo "FAIL: unknown mode '$mode'"; exit 2 ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
