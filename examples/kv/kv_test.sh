#!/usr/bin/env bash
# End to end: the C KV host drives the C KV plugin through real processes.
# Usage: kv_test.sh KV_HOST KV_PLUGIN [KV_PLUGIN_NETRPC_ONLY [KV_HOST_NETRPC_ONLY]]
set -uo pipefail
host=$1 plugin=$2 plugin_netrpc=${3:-} host_netrpc=${4:-}
fails=0 passes=0
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
# Private copies: the "nothing left running" check must not see the
# plugins of tests that run at the same time.
mkdir -p "$tmp/bin" && cp "$plugin" "$tmp/bin/kv-plugin" || { echo "FAIL cannot copy the plugin"; exit 1; }
plugin=$tmp/bin/kv-plugin
if [ -n "$plugin_netrpc" ]; then
  cp "$plugin_netrpc" "$tmp/bin/kv-plugin-netrpc" || { echo "FAIL cannot copy the plugin"; exit 1; }
  plugin_netrpc=$tmp/bin/kv-plugin-netrpc
fi

check() { # name, then the command's success
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi
}
expect_eq() { # name expected actual
  if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi
}
expect_contains() { # name haystack needle
  case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: $2"; check "$1" 1 ;; esac
}

# Every run's exit status is checked: kv-host exits 1 when its plugin ended
# badly (a leak report under ASan, a crash), so that fails the test too.
# Sanitizer reports also go to files: a plugin's fd 2 is the GRPCStdio pipe
# after its handshake, and a report written there dies with the process.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$tmp/sanitizer"
fi
runs() { # name command...: stdout into $out, stderr into $tmp/err; expects exit 0
  local name=$1
  shift
  out=$("$@" 2>"$tmp/err")
  local rc=$?
  expect_eq "$name: exit 0" 0 "$rc"
  [ "$rc" -eq 0 ] || sed 's/^/  stderr: /' "$tmp/err" | tail -n 8
  if [ "$rc" -ne 0 ]; then
    for f in "$tmp"/sanitizer.*; do
      [ -f "$f" ] && sed 's/^/  sanitizer: /' "$f" | head -n 60 && rm -f "$f"
    done
  fi
}

no_grpc_core() { # name binary: no gRPC core symbol in it
  # Whole outputs first: `nm | grep -q` fails under pipefail when grep
  # stops reading early, which would read as "not there".
  local syms
  syms=$(nm -D "$2" 2>/dev/null; nm "$2" 2>/dev/null)
  if grep -qE '(^| )grpc_init$' <<<"$syms"; then
    check "$1" 1
  else
    check "$1" 0
  fi
}

runs "puts and gets in one session" "$host" --plugin "$plugin" put a 1 put b two get a get b get missing
expect_eq "gets print values, missing key prints an empty line" $'1\ntwo\n' "$out"$'\n'

runs "a new session" "$host" --plugin "$plugin" --proto grpc --start-timeout 10 -- get a
expect_eq "each run is a new plugin session" "" "$out"

# Past nanopb's 64 KiB bytes limit (argv caps one argument at 128 KiB).
big=$(head -c 100000 /dev/zero | tr '\0' 'x')
runs "100 KB" "$host" --plugin "$plugin" put big "$big" get big
expect_eq "a 100 KB value round-trips" 100000 "${#out}"

# 1 MiB through the bench mode, which checks every reply's size.
runs "1 MiB bench" "$host" --plugin "$plugin" bench --mode latency -n 20 --size 1048576
expect_contains "a 1 MiB value round-trips (bench)" "$out" '"size":1048576'

runs "throughput bench" "$host" --plugin "$plugin" bench --mode throughput -n 800 -c 8
expect_contains "8 concurrent callers" "$out" '"threads":8'

# The same over netrpc (yamux + net/rpc + gob).
runs "netrpc: puts and gets in one session" "$host" --plugin "$plugin" --proto netrpc put a 1 put b two get a get b get missing
expect_eq "netrpc: gets print values, missing key prints an empty line" $'1\ntwo\n' "$out"$'\n'

runs "netrpc: 100 KB" "$host" --plugin "$plugin" --proto netrpc put big "$big" get big
expect_eq "netrpc: a 100 KB value round-trips" 100000 "${#out}"

runs "netrpc: 1 MiB bench" "$host" --plugin "$plugin" --proto netrpc bench --mode latency -n 20 --size 1048576
expect_contains "netrpc: a 1 MiB value round-trips (bench)" "$out" '"size":1048576'

runs "netrpc: throughput bench" "$host" --plugin "$plugin" --proto netrpc bench --mode throughput -n 800 -c 8
expect_contains "netrpc: 8 concurrent callers" "$out" '"threads":8'

# Both kv plugins link static outside sanitizer builds: a named socket group
# is looked up without NSS modules, found or not (a static glibc loading one
# crashes). name plugin proto
socket_group_checks() {
  local name=$1 plug=$2 proto=$3 rc
  runs "$name, PLUGIN_UNIX_SOCKET_GROUP by name" \
    env PLUGIN_UNIX_SOCKET_GROUP="$(id -gn)" "$host" --plugin "$plug" --proto "$proto" put a 1 get a
  expect_eq "$name, socket group by name: value" "1" "$out"
  env PLUGIN_UNIX_SOCKET_GROUP=gp-no-such-group "$host" --plugin "$plug" --proto "$proto" \
    get a >/dev/null 2>"$tmp/err"
  rc=$?
  expect_eq "$name, unknown socket group: kv-host exits 1" 1 "$rc"
  expect_contains "$name, unknown socket group: the plugin says why" "$(cat "$tmp/err")" \
    'unknown group'
  case "$(cat "$tmp/err")" in *"killed by signal"*) check "$name, unknown socket group: no crash" 1 ;;
  *) check "$name, unknown socket group: no crash" 0 ;; esac
}
# Static outside sanitizer builds (BUILD): no program interpreter, or a
# sanitizer's runtime in it. name binary
static_unless_sanitized() {
  # Whole outputs first: `cmd | grep -q` fails under pipefail when grep
  # stops reading early.
  local headers syms
  headers=$(readelf -l "$2" 2>&1)
  syms=$(nm "$2" 2>&1)
  if [[ "$headers" != *"Program Headers"* ]]; then
    check "$1 (readelf read it)" 1
  elif [[ "$headers" != *INTERP* ]] || grep -qE ' (__asan_init|__tsan_init|__ubsan_handle_[a-z_]+)$' <<<"$syms"; then
    check "$1" 0
  else
    check "$1" 1
  fi
}
static_unless_sanitized "gRPC plugin: linked static (unless sanitized)" "$plugin"
socket_group_checks "gRPC plugin" "$plugin" grpc

# Over TCP (KV_PLUGIN_NETWORK): the static plugin binds an IP literal,
# which needs no NSS either.
for proto in grpc netrpc; do
  runs "$proto over tcp" env KV_PLUGIN_NETWORK=tcp "$host" --plugin "$plugin" --proto "$proto" put a 1 get a
  expect_eq "$proto over tcp: value" "1" "$out"
  # Its handshake line names the address.
  : >"$tmp/line"
  env KV_PLUGIN_NETWORK=tcp KV_PLUGIN_PROTO=$proto BASIC_PLUGIN=hello PLUGIN_PROTOCOL_VERSIONS=1 \
    "$plugin" >"$tmp/line" 2>/dev/null </dev/null &
  pid=$!
  for _ in $(seq 200); do [ -s "$tmp/line" ] && break; sleep 0.05; done
  kill "$pid" 2>/dev/null
  # It stops on SIGTERM and exits 0 (a sanitizer's leak report changes
  # that); one that hung is killed here after 10 s, and fails.
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; rc=$?; pid=
  expect_eq "$proto over tcp: the plugin exits 0 on SIGTERM" 0 "$rc"
  expect_contains "$proto over tcp: the plugin served on tcp" "$(head -n 1 "$tmp/line")" \
    "|tcp|127.0.0.1:"
done
env KV_PLUGIN_NETWORK=udp "$host" --plugin "$plugin" get a >/dev/null 2>"$tmp/err"; rc=$?
expect_eq "KV_PLUGIN_NETWORK=udp: kv-host exits 1" 1 "$rc"
expect_contains "KV_PLUGIN_NETWORK=udp: the plugin says why" "$(cat "$tmp/err")" \
  'unknown network \"udp\" (expected unix or tcp)'

# A plugin built with //transport:goplugin_netrpc (no gRPC in the binary).
if [ -n "${plugin_netrpc:-}" ]; then
  runs "netrpc-only plugin" "$host" --plugin "$plugin_netrpc" --proto netrpc put a 1 get a
  expect_eq "netrpc-only plugin binary serves netrpc" "1" "$out"
  no_grpc_core "netrpc-only plugin binary has no gRPC core" "$plugin_netrpc"
  static_unless_sanitized "netrpc-only plugin: linked static (unless sanitized)" "$plugin_netrpc"
  socket_group_checks "netrpc-only plugin" "$plugin_netrpc" netrpc
  "$host" --plugin "$plugin_netrpc" --proto grpc get a >/dev/null 2>"$tmp/err"; rc=$?
  expect_eq "netrpc-only plugin asked for grpc exits 1" 1 "$rc"
  expect_contains "netrpc-only plugin says grpc is not built in" "$(cat "$tmp/err")" "grpc is not built into this plugin"
fi

# A host built with //transport:goplugin_netrpc: the wire table has netrpc
# alone, so it drives a netrpc plugin and refuses a gRPC one with words.
if [ -n "$host_netrpc" ]; then
  runs "netrpc-only host drives a plugin over netrpc" "$host_netrpc" --plugin "$plugin" --proto netrpc put a 1 get a
  expect_eq "netrpc-only host reads back what it put" "1" "$out"
  no_grpc_core "netrpc-only host binary has no gRPC core" "$host_netrpc"
  "$host_netrpc" --plugin "$plugin" --proto grpc get a >/dev/null 2>"$tmp/err"; rc=$?
  expect_eq "netrpc-only host asked for grpc exits 1" 1 "$rc"
  expect_contains "netrpc-only host names what it lacks" "$(cat "$tmp/err")" "grpc"
fi

"$host" --plugin "$plugin" bogus >/dev/null 2>"$tmp/err"; rc=$?
expect_eq "bad command exits 1" 1 "$rc"
expect_contains "bad command names what was expected" "$(cat "$tmp/err")" "expected put KEY VALUE or get KEY"

"$host" --plugin "$plugin" --kill-grace 0 get a >/dev/null 2>"$tmp/err"; rc=$?
expect_eq "--kill-grace 0 exits 1" 1 "$rc"
expect_contains "... naming the range" "$(cat "$tmp/err")" 'bad --kill-grace "0" (expected milliseconds, 1..600000)'

"$host" --plugin "$tmp/no-such-plugin" get a >/dev/null 2>"$tmp/err"; rc=$?
expect_eq "missing plugin binary exits 1" 1 "$rc"
expect_contains "missing plugin binary is named" "$(cat "$tmp/err")" "no-such-plugin"

KV_PLUGIN_PROTO=bogus "$plugin" >"$tmp/out" 2>"$tmp/err"; rc=$?
expect_eq "plugin run by hand without the cookie exits 1" 1 "$rc"
expect_eq "plugin run by hand prints nothing on stdout" "" "$(cat "$tmp/out")"
expect_contains "plugin run by hand explains itself" "$(cat "$tmp/err")" "plugin"

BASIC_PLUGIN=hello KV_PLUGIN_PROTO=bogus "$plugin" >"$tmp/out" 2>"$tmp/err"; rc=$?
expect_eq "unknown KV_PLUGIN_PROTO exits 1" 1 "$rc"
expect_contains "unknown KV_PLUGIN_PROTO is named" "$(cat "$tmp/err")" 'unknown KV_PLUGIN_PROTO "bogus"'

# AutoMTLS over gRPC (more, with bad certificates, in kv_tls_test.sh).
runs "--automtls: puts and gets" "$host" --plugin "$plugin" --automtls put a 1 put b two get a get b
expect_eq "--automtls: values come back" $'1\ntwo' "$out"
runs "--automtls: bench" "$host" --plugin "$plugin" --automtls bench --mode throughput -n 400 -c 8 --size 65536
expect_contains "--automtls: 8 concurrent callers, 64 KiB values" "$out" '"threads":8'

# AutoMTLS over netrpc: TLS under yamux.
runs "--automtls --proto netrpc: puts and gets" "$host" --plugin "$plugin" --automtls --proto netrpc put a 1 put b two get a get b
expect_eq "--automtls --proto netrpc: values come back" $'1\ntwo' "$out"
runs "--automtls --proto netrpc: bench" "$host" --plugin "$plugin" --automtls --proto netrpc bench --mode throughput -n 400 -c 8 --size 65536
expect_contains "--automtls --proto netrpc: 8 concurrent callers, 64 KiB values" "$out" '"threads":8'
runs "--automtls --proto netrpc: 1 MiB bench" "$host" --plugin "$plugin" --automtls --proto netrpc bench --mode latency -n 20 --size 1048576
expect_contains "--automtls --proto netrpc: a 1 MiB value round-trips" "$out" '"size":1048576'

# Plugin log lines (hclog JSON on its stderr) reach the host's logger.
KV_PLUGIN_LOG_LEVEL=debug KV_HOST_LOG_LEVEL=debug "$host" --plugin "$plugin" put k v >/dev/null 2>"$tmp/err"
expect_eq "debug logging: exit 0" 0 $?
expect_contains "plugin debug log lines reach the host" "$(cat "$tmp/err")" "put (1 bytes)"

# A plugin that ends badly: kv-host says so, with the end of the plugin's
# stderr (a sanitizer's or an abort's words would be there; kv-host logs
# raw stderr lines only at debug).
printf '#!/bin/sh\n"%s"\necho "kv-wrapper: last words before a bad exit" >&2\nexit 3\n' "$plugin" >"$tmp/bin/bad-exit"
chmod +x "$tmp/bin/bad-exit"
"$host" --plugin "$tmp/bin/bad-exit" put a 1 >/dev/null 2>"$tmp/err"; rc=$?
expect_eq "plugin with a bad exit: kv-host exits 1" 1 "$rc"
expect_contains "plugin with a bad exit is reported" "$(cat "$tmp/err")" "exited unexpectedly: exit status 3"
expect_contains "plugin with a bad exit: its last stderr lines are shown" "$(cat "$tmp/err")" "kv-wrapper: last words before a bad exit"

# No plugin left behind by any run above.
left=$( (pgrep -f "^$plugin\$"; [ -n "$plugin_netrpc" ] && pgrep -f "^$plugin_netrpc\$") | wc -l)
expect_eq "no plugin process left running" 0 "$left"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
