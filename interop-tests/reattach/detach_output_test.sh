#!/usr/bin/env bash
# A detached plugin's stdout and stderr go to files beside the reattach file,
# so it can log after its host has exited. Before, they were pipes to the
# host: once it was gone, a Go plugin died of SIGPIPE on its next log line.
#   kv-host --detach F: the plugin outlives kv-host; F.stdout has the
#   handshake line. A later kv-host --reattach F puts a key: the plugin logs
#   that put (go-kv-plugin at debug; kv-plugin with KV_PLUGIN_LOG_LEVEL=debug)
#   to F.stderr, keeps running, and --kill then stops it gracefully, with no
#   sanitizer report in F.stderr (under --config=asan).
# Usage: detach_output_test.sh KV_HOST PLUGIN [PROTO...]   (default: grpc)
set -uo pipefail
host=$1 plugin=$2
shift 2
protos=("$@")
[ ${#protos[@]} -gt 0 ] || protos=(grpc)
for f in "$host" "$plugin"; do
  [ -x "$f" ] || { echo "FAIL peer missing: $f"; exit 1; }
done
fails=0 passes=0
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi; }
expect_contains() { case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: ${2:0:2000}"; check "$1" 1 ;; esac; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
name=$(basename "$plugin")

for proto in "${protos[@]}"; do
  f=$tmp/$proto.json
  KV_PLUGIN_LOG_LEVEL=debug "$host" --plugin "$plugin" --proto "$proto" --detach "$f" -- put a 1 2>"$tmp/err"
  expect_eq "$proto: kv-host --detach ($name) exits 0" 0 $?
  pid=$(sed -n 's/^ *"Pid": *\([0-9]*\).*/\1/p' "$f")
  [ -n "$pid" ] && pids+=("$pid")
  expect_eq "$proto: the handshake line is in $proto.json.stdout" "1|" "$(head -c 2 "$f.stdout" 2>&1)"
  [ -f "$f.stderr" ]; check "$proto: $proto.json.stderr is there" $?
  expect_eq "$proto: the output files are private (0600)" "600 600" "$(stat -c %a "$f.stdout" "$f.stderr" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
  sleep 0.2
  alive "$pid"; check "$proto: the plugin outlives its host" $?

  # The host that launched it is gone: this put makes the plugin log.
  out=$("$host" --reattach "$f" -- put late-key 2 get late-key 2>"$tmp/err")
  rc=$?
  [ $rc -eq 0 ] || sed 's/^/  stderr: /' "$tmp/err"
  expect_eq "$proto: a reattaching kv-host puts and gets (exit 0)" 0 $rc
  expect_eq "$proto: ... the value comes back" 2 "$out"
  for _ in $(seq 50); do grep -q late-key "$f.stderr" 2>/dev/null && break; sleep 0.1; done
  expect_contains "$proto: the plugin's log line about it is in $proto.json.stderr" "$(cat "$f.stderr")" "late-key"
  sleep 0.3
  alive "$pid"; check "$proto: the plugin is still alive after logging" $?
  out=$("$host" --reattach "$f" -- get late-key get a 2>"$tmp/err")
  expect_eq "$proto: and answers again (exit 0)" 0 $?
  expect_eq "$proto: ... with both values" $'2\n1' "$out"

  "$host" --reattach "$f" --kill 2>"$tmp/err"
  expect_eq "$proto: --kill exits 0" 0 $?
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  alive "$pid"; expect_eq "$proto: the plugin is gone" 1 $?
  [ -f "$f.stderr" ]; check "$proto: --kill leaves the log files" $?
  # The detached plugin is nobody's child we can wait for: its stderr is
  # where a leak report would be.
  if grep -q "Sanitizer" "$f.stderr"; then
    echo "  $(grep -m3 "Sanitizer" "$f.stderr")"
    check "$proto: no sanitizer report in the plugin's stderr" 1
  else
    check "$proto: no sanitizer report in the plugin's stderr" 0
  fi
done

# --detach-output PREFIX puts them elsewhere.
KV_PLUGIN_LOG_LEVEL=debug "$host" --plugin "$plugin" --detach "$tmp/o.json" --detach-output "$tmp/logs" -- put b 3 2>"$tmp/err"
expect_eq "--detach-output: exit 0" 0 $?
pid=$(sed -n 's/^ *"Pid": *\([0-9]*\).*/\1/p' "$tmp/o.json")
[ -n "$pid" ] && pids+=("$pid")
expect_eq "--detach-output: the handshake line is in PREFIX.stdout" "1|" "$(head -c 2 "$tmp/logs.stdout" 2>&1)"
[ ! -e "$tmp/o.json.stdout" ]; check "--detach-output: nothing beside the reattach file" $?
"$host" --reattach "$tmp/o.json" --kill 2>"$tmp/err"
expect_eq "--detach-output: --kill exits 0" 0 $?
out=$("$host" --plugin "$plugin" --detach-output "$tmp/x" -- get a 2>&1)
expect_eq "--detach-output without --detach: exit 1" 1 $?
expect_contains "--detach-output without --detach: says so" "$out" "--detach-output PREFIX needs --detach FILE"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
