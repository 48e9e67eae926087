#!/usr/bin/env bash
# proto3 strings must be UTF-8 on the gRPC wire, as protobuf-go insists:
#   C host -> Go plugin: refused locally, before any call, naming the field;
#   Go host -> C plugin (the request encoded by hand: Go's marshaler will
#   not send it): refused with code Internal naming the field, as a Go
#   plugin refuses it;
#   valid multi-byte UTF-8 passes both ways; over netrpc (gob strings are
#   bytes in Go) any bytes pass, as between Go peers.
# Usage: utf8_interop_test.sh C_HOST C_PLUGIN GO_HOST GO_PLUGIN
set -uo pipefail
c_host=$1 c_plugin=$2 go_host=$3 go_plugin=$4
fails=0 passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, then the command's success
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi
}
expect_eq() { # name expected actual
  if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi
}
expect_contains() { # name haystack needle
  case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: $2"; check "$1" 1 ;; esac
}
expect_lacks() { # name haystack needle
  case "$2" in *"$3"*) echo "  expected not to contain: $3"; echo "  got: $2"; check "$1" 1 ;; *) check "$1" 0 ;; esac
}

bad=$'k\xff\xfe'       # not UTF-8 at byte 1
good='ключ-日本-😀'     # 2-, 3- and 4-byte sequences

# C host -> Go plugin.
out=$("$c_host" --plugin "$go_plugin" put "$bad" v 2>"$tmp/err")
rc=$?
err=$(cat "$tmp/err")
expect_eq "C host -> Go plugin: invalid UTF-8 key refused (exit 1)" 1 "$rc"
expect_contains "C host -> Go plugin: words name the field" "$err" \
  "/proto.KV/Put request: invalid UTF-8 in string field 1 of /proto.KV/Put (at byte 1)"
# Go's words would mean the request went out; ours come before any call.
expect_lacks "C host -> Go plugin: refused locally (the Go plugin never saw it)" "$err" "unmarshal"
out=$("$c_host" --plugin "$go_plugin" put "$good" v1 get "$good" 2>"$tmp/err")
expect_eq "C host -> Go plugin: multi-byte UTF-8: exit 0" 0 $?
expect_eq "C host -> Go plugin: multi-byte UTF-8 round-trips" "v1" "$out"

# Go host -> C plugin, and the same against Go's own plugin for reference.
"$go_host" --plugin "$c_plugin" putraw "$bad" v >/dev/null 2>"$tmp/err"
rc=$?
err=$(grep -v '\[DEBUG\]' "$tmp/err")
expect_eq "Go host -> C plugin: invalid UTF-8 key refused (exit 1)" 1 "$rc"
expect_contains "Go host -> C plugin: code Internal" "$err" "rpc error: code = Internal"
expect_contains "Go host -> C plugin: words name the field" "$err" \
  "invalid UTF-8 in string field 1 of /proto.KV/Put (at byte 1)"
"$go_host" --plugin "$go_plugin" putraw "$bad" v >/dev/null 2>"$tmp/err"
expect_eq "Go host -> Go plugin (reference): refused (exit 1)" 1 $?
err=$(grep -v '\[DEBUG\]' "$tmp/err")
expect_contains "Go host -> Go plugin (reference): code Internal" "$err" "rpc error: code = Internal"
expect_contains "Go host -> Go plugin (reference): Go's words" "$err" "contains invalid UTF-8"
out=$("$go_host" --plugin "$c_plugin" putraw "$good" v2 get "$good" 2>"$tmp/err")
expect_eq "Go host -> C plugin: multi-byte UTF-8: exit 0" 0 $?
expect_eq "Go host -> C plugin: multi-byte UTF-8 round-trips" "v2" "$out"

# netrpc: gob strings are any bytes, in Go and here.
out=$("$c_host" --plugin "$go_plugin" --proto netrpc put "$bad" v3 get "$bad" 2>"$tmp/err")
expect_eq "netrpc: C host -> Go plugin: exit 0" 0 $?
expect_eq "netrpc: C host -> Go plugin: any bytes pass, as in Go" "v3" "$out"
out=$("$go_host" --plugin "$c_plugin" --proto netrpc put "$bad" v4 get "$bad" 2>"$tmp/err")
expect_eq "netrpc: Go host -> C plugin: exit 0" 0 $?
expect_eq "netrpc: Go host -> C plugin: any bytes pass, as in Go" "v4" "$out"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
