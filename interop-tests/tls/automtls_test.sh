#!/usr/bin/env bash
# AutoMTLS on the gRPC and netrpc wires between real peers: hashicorp/go-plugin 1.0.1
# (Go) and goplugin-c (C), both directions, and the refusals.
# Usage: automtls_test.sh MODE C_HOST C_PLUGIN GO_HOST GO_PLUGIN AUTOCERT_TOOL GO_TLSPEER PY_PLUGIN
#   MODE: go-host-c-plugin | c-host-go-plugin | refusals
# The Go peers may be on go-plugin 1.0.1 or 1.8 (interop-tests/go18). 1.8
# logs "configuring ... automatic mTLS" at debug, 1.0.1 at info: the checks
# for it run with debug logging.
set -uo pipefail
mode=$1 c_host=$2 c_plugin=$3 go_host=$4 go_plugin=$5 autocert=$6 tlspeer=$7 py_plugin=$8
for f in "$c_host" "$c_plugin" "$go_host" "$go_plugin" "$autocert" "$tlspeer" "$py_plugin"; do
  [ -x "$f" ] || { echo "FAIL peer missing: $f"; exit 1; }
done
fails=0 passes=0
tmp=$(mktemp -d)
# Private copies: the "nothing left running" check must not see the
# plugins of tests that run at the same time.
mkdir -p "$tmp/bin" && cp "$c_plugin" "$tmp/bin/kv-plugin" && cp "$go_plugin" "$tmp/bin/go-kv-plugin" ||
  { echo "FAIL cannot copy the plugins"; exit 1; }
c_plugin=$tmp/bin/kv-plugin go_plugin=$tmp/bin/go-kv-plugin
bg=()
cleanup() { for p in "${bg[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi; }
expect_contains() { case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: ${2:0:3000}"; check "$1" 1 ;; esac; }
expect_not_contains() { case "$2" in *"$3"*) echo "  expected not to contain: $3"; echo "  got: ${2:0:3000}"; check "$1" 1 ;; *) check "$1" 0 ;; esac; }

# A plugin run by hand as a host would: cookie, versions, our certificate.
# Waits for its handshake line; sets $line and $pid.
start_plugin() { # plugin cert_pem_file proto
  : >"$tmp/line" # not the line of an earlier plugin
  BASIC_PLUGIN=hello PLUGIN_PROTOCOL_VERSIONS=1 KV_PLUGIN_PROTO=$3 KV_PLUGIN_LOG_LEVEL=debug \
    PLUGIN_CLIENT_CERT="$(cat "$2")" "$1" >"$tmp/line" 2>"$tmp/plugin_err" &
  pid=$!
  bg+=("$pid")
  for _ in $(seq 100); do
    [ "$(wc -l <"$tmp/line")" -ge 1 ] 2>/dev/null && break # a whole line, not a part
    sleep 0.05
  done
  line=$(head -n1 "$tmp/line")
}

case "$mode" in
go-host-c-plugin)
  out=$("$go_host" --plugin "$c_plugin" --automtls --log-level debug put a 1 put b two get a get b 2>"$tmp/err")
  rc=$?
  expect_eq "Go host (AutoMTLS) -> C plugin: exit 0" 0 "$rc"
  expect_eq "Go host (AutoMTLS) -> C plugin: values" $'1\ntwo' "$out"
  expect_contains "the Go host did configure AutoMTLS" "$(cat "$tmp/err")" "configuring client automatic mTLS"
  expect_contains "graceful shutdown over TLS" "$(cat "$tmp/err")" "graceful=true"
  head -c 1048576 /dev/urandom >"$tmp/big"
  out=$("$go_host" --plugin "$c_plugin" --automtls putfile big "$tmp/big" hammer 4 50 2>"$tmp/err")
  expect_eq "1 MiB and 400 concurrent calls over TLS: exit 0" 0 $?
  expect_contains "1 MiB and 400 concurrent calls over TLS" "$out" "hammer: 400 calls ok"
  # netrpc: TLS under yamux.
  out=$("$go_host" --plugin "$c_plugin" --proto netrpc --automtls --log-level debug put a 1 put b two get a get b 2>"$tmp/err")
  rc=$?
  expect_eq "Go host (AutoMTLS) -> C plugin, netrpc: exit 0" 0 "$rc"
  expect_eq "Go host (AutoMTLS) -> C plugin, netrpc: values" $'1\ntwo' "$out"
  expect_contains "netrpc: the Go host did configure AutoMTLS" "$(cat "$tmp/err")" "configuring client automatic mTLS"
  out=$("$go_host" --plugin "$c_plugin" --proto netrpc --automtls putfile big "$tmp/big" hammer 4 50 2>"$tmp/err")
  expect_eq "netrpc: 1 MiB and 400 concurrent calls over TLS: exit 0" 0 $?
  expect_contains "netrpc: 1 MiB and 400 concurrent calls over TLS" "$out" "hammer: 400 calls ok"
  ;;
c-host-go-plugin)
  out=$("$c_host" --plugin "$go_plugin" --automtls put a 1 put b two get a get b 2>"$tmp/err")
  rc=$?
  expect_eq "C host (AutoMTLS) -> Go plugin: exit 0" 0 "$rc"
  expect_eq "C host (AutoMTLS) -> Go plugin: values" $'1\ntwo' "$out"
  KV_HOST_LOG_LEVEL=debug "$c_host" --plugin "$go_plugin" --automtls get a >/dev/null 2>"$tmp/err"
  expect_eq "C host (AutoMTLS, debug) -> Go plugin: exit 0" 0 $?
  expect_contains "the Go plugin did configure AutoMTLS" "$(cat "$tmp/err")" "configuring server automatic mTLS"
  out=$("$c_host" --plugin "$go_plugin" --automtls bench --mode throughput -n 400 -c 8 --size 65536 2>"$tmp/err")
  expect_eq "8 concurrent callers over TLS: exit 0" 0 $?
  expect_contains "8 concurrent callers, 64 KiB values over TLS" "$out" '"threads":8'
  # netrpc: TLS under yamux.
  out=$("$c_host" --plugin "$go_plugin" --proto netrpc --automtls put a 1 put b two get a get b 2>"$tmp/err")
  rc=$?
  expect_eq "C host (AutoMTLS) -> Go plugin, netrpc: exit 0" 0 "$rc"
  expect_eq "C host (AutoMTLS) -> Go plugin, netrpc: values" $'1\ntwo' "$out"
  KV_HOST_LOG_LEVEL=debug "$c_host" --plugin "$go_plugin" --proto netrpc --automtls get a >/dev/null 2>"$tmp/err"
  expect_eq "C host (AutoMTLS, debug) -> Go plugin, netrpc: exit 0" 0 $?
  expect_contains "netrpc: the Go plugin did configure AutoMTLS" "$(cat "$tmp/err")" "configuring server automatic mTLS"
  out=$("$c_host" --plugin "$go_plugin" --proto netrpc --automtls bench --mode throughput -n 400 -c 8 --size 65536 2>"$tmp/err")
  expect_eq "netrpc: 8 concurrent callers over TLS: exit 0" 0 $?
  expect_contains "netrpc: 8 concurrent callers, 64 KiB values over TLS" "$out" '"threads":8'
  ;;
refusals)
  mkdir -p "$tmp/host" "$tmp/old" "$tmp/stranger"
  "$autocert" "$tmp/host" && "$autocert" "$tmp/old" expired && "$autocert" "$tmp/stranger" ||
    { echo "FAIL autocert_tool"; exit 1; }

  # The C plugin checks the host's certificate before anything else.
  BASIC_PLUGIN=hello PLUGIN_CLIENT_CERT="garbage" "$c_plugin" >"$tmp/out" 2>"$tmp/err"; rc=$?
  expect_eq "C plugin, garbage PLUGIN_CLIENT_CERT: exit 1" 1 "$rc"
  expect_eq "C plugin, garbage PLUGIN_CLIENT_CERT: no handshake line" "" "$(cat "$tmp/out")"
  expect_contains "C plugin, garbage PLUGIN_CLIENT_CERT: says who refused what" "$(cat "$tmp/err")" \
    "the plugin refuses the host's certificate: PLUGIN_CLIENT_CERT is not a PEM certificate"
  BASIC_PLUGIN=hello PLUGIN_CLIENT_CERT="$(cat "$tmp/old/cert.pem")" "$c_plugin" >"$tmp/out" 2>"$tmp/err"; rc=$?
  expect_eq "C plugin, expired host certificate: exit 1" 1 "$rc"
  expect_contains "C plugin, expired host certificate: says so" "$(cat "$tmp/err")" \
    "the plugin refuses the host's certificate: the host's PLUGIN_CLIENT_CERT: not usable as the client's certificate: The certificate validity has expired"

  # A certificate offered to a host without TLS (go-plugin's host panics).
  for p in "$c_plugin" "$go_plugin"; do
    PLUGIN_CLIENT_CERT="$(cat "$tmp/host/cert.pem")" "$c_host" --plugin "$p" get a >/dev/null 2>"$tmp/err"; rc=$?
    expect_eq "host without TLS, $(basename "$p") offers a certificate: exit 1" 1 "$rc"
    expect_contains "host without TLS, $(basename "$p") offers a certificate: refused with words" \
      "$(cat "$tmp/err")" "the plugin offered a TLS certificate (field 6"
  done

  # Hosts without the certificate the C plugin was given.
  start_plugin "$c_plugin" "$tmp/host/cert.pem" grpc
  IFS='|' read -r _ _ net addr _ field <<<"$line"
  expect_eq "C plugin with PLUGIN_CLIENT_CERT prints field 6" 1 "$([ ${#field} -gt 50 ] && echo 1 || echo 0)"
  printf '%s' "$field" >"$tmp/field.txt"
  # gRPC core hangs up without sending its alert: the Go client sees the
  # connection end; the plugin's debug log has the reason.
  out=$("$tlspeer" client "$addr" none "$tmp/field.txt" 10 2>&1); rc=$?
  expect_eq "Go TLS client without a certificate: refused ($out)" 1 "$rc"
  out=$("$tlspeer" client "$addr" "$tmp/stranger" "$tmp/field.txt" 10 2>&1); rc=$?
  expect_eq "Go TLS client with a certificate the plugin was not given: refused ($out)" 1 "$rc"
  sleep 0.2
  kill "$pid"; wait "$pid"
  expect_eq "the C plugin stops cleanly on SIGTERM (exit 0)" 0 $?
  expect_contains "the C plugin logs why: no certificate" "$(cat "$tmp/plugin_err")" "peer did not return a certificate"
  expect_contains "the C plugin logs why: not trusted" "$(cat "$tmp/plugin_err")" "certificate verify failed"

  # A plugin without AutoMTLS (grpcio ignores PLUGIN_CLIENT_CERT): no field 6.
  "$c_host" --plugin "$py_plugin" --automtls get a >/dev/null 2>"$tmp/err"; rc=$?
  expect_eq "C host AutoMTLS, plugin without AutoMTLS (Python): exit 1" 1 "$rc"
  expect_contains "C host AutoMTLS, plugin without AutoMTLS (Python): says why" "$(cat "$tmp/err")" \
    "AutoMTLS: expected the plugin's certificate in handshake field 6, got no field 6"

  # AutoMTLS over netrpc (TLS under yamux) works both ways now.
  "$c_host" --plugin "$go_plugin" --proto netrpc --automtls get a >/dev/null 2>"$tmp/err"; rc=$?
  expect_eq "C host AutoMTLS, Go netrpc plugin: exit 0 ($(head -c 300 "$tmp/err"))" 0 "$rc"
  "$go_host" --plugin "$c_plugin" --proto netrpc --automtls get a >/dev/null 2>"$tmp/err"; rc=$?
  expect_eq "Go host AutoMTLS, C netrpc plugin: exit 0 ($(head -c 300 "$tmp/err"))" 0 "$rc"

  # Hosts without the certificate the C netrpc plugin was given: the
  # plugin refuses them on the connection's thread and logs why.
  start_plugin "$c_plugin" "$tmp/host/cert.pem" netrpc
  IFS='|' read -r _ _ net addr _ field <<<"$line"
  expect_eq "C netrpc plugin with PLUGIN_CLIENT_CERT prints field 6" 1 "$([ ${#field} -gt 50 ] && echo 1 || echo 0)"
  printf '%s' "$field" >"$tmp/field.txt"
  out=$("$tlspeer" client "$addr" none "$tmp/field.txt" 10 2>&1); rc=$?
  expect_eq "netrpc: Go TLS client without a certificate: refused ($out)" 1 "$rc"
  expect_contains "netrpc: refused by the plugin's TLS, no certificate" "$out" "remote error: tls:"
  out=$("$tlspeer" client "$addr" "$tmp/stranger" "$tmp/field.txt" 10 2>&1); rc=$?
  expect_eq "netrpc: Go TLS client with a certificate the plugin was not given: refused ($out)" 1 "$rc"
  expect_contains "netrpc: refused by the plugin's TLS, stranger" "$out" "remote error: tls:"
  sleep 0.2
  kill "$pid"; wait "$pid"
  expect_eq "the C netrpc plugin stops cleanly on SIGTERM (exit 0)" 0 $?
  expect_contains "the C netrpc plugin logs why it refused" "$(cat "$tmp/plugin_err")" "refused a connection: tls:"
  ;;
*) echo "FAIL unknown mode $mode"; exit 1 ;;
esac

left=$( (pgrep -f "^$c_plugin\$"; pgrep -f "^$go_plugin\$") | wc -l)
expect_eq "no plugin process left running" 0 "$left"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
