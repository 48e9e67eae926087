#!/usr/bin/env bash
# kv-host --detach / --reattach / --kill through real processes: the plugin
# outlives the host, a later host uses it and stops it, and a reattach file
# that names a dead pid or a pid now used by another process kills nothing.
# Usage: detach_test.sh KV_HOST KV_PLUGIN [PROTO...]   (PROTO: grpc, netrpc)
set -uo pipefail
host=$1 plugin=$2
shift 2
protos=("$@")
[ ${#protos[@]} -gt 0 ] || protos=(grpc)
fails=0 passes=0
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { # name, then the command's success
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi
}
expect_eq() { # name expected actual
  if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi
}
expect_contains() { # name haystack needle
  case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: $2"; check "$1" 1 ;; esac
}
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
json_int() { # file key
  sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1"
}
json_str() { # file key
  sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$1"
}
# A copy of a reattach file with another Pid (and PidStartTime, if given).
rewrite() { # in out pid [start_time]
  local st=""
  [ $# -ge 4 ] && st=",\"PidStartTime\":$4"
  printf '{"Protocol":"%s","ProtocolVersion":1,"Addr":{"Network":"%s","String":"%s"},"Pid":%s%s}\n' \
    "$(json_str "$1" Protocol)" "$(json_str "$1" Network)" "$(json_str "$1" String)" "$3" "$st" >"$2"
}

for proto in "${protos[@]}"; do
  f=$tmp/$proto.json
  # 1. Detach: put, exit; the plugin keeps running without its host.
  "$host" --plugin "$plugin" --proto "$proto" --detach "$f" -- put a 1 put b two 2>"$tmp/err"
  expect_eq "$proto: detach exits 0" 0 $?
  pid=$(json_int "$f" Pid)
  [ -n "$pid" ] && pids+=("$pid")
  expect_contains "$proto: the file is go-plugin's ReattachConfig" "$(cat "$f" 2>&1)" "\"Protocol\": \"$proto\""
  expect_eq "$proto: the file is private (0600)" 600 "$(stat -c %a "$f" 2>&1)"
  # Beside it: the plugin's FILE.stdout and FILE.stderr (detach_output_test.sh).
  expect_eq "$proto: no temp file left next to it" 1 "$(ls "$tmp" | grep "^$proto" | grep -cv '\.std\(out\|err\)$')"
  sleep 0.3
  alive "$pid"; check "$proto: the detached plugin outlives kv-host" $?
  expect_eq "$proto: it is not a child of this shell" 0 "$(ps -o ppid= -p "$pid" | grep -cw $$)"

  # 2. Reattach: the values are there; the plugin keeps running after.
  out=$("$host" --reattach "$f" -- get a get b put c 3 get c 2>"$tmp/err")
  expect_eq "$proto: reattach exits 0" 0 $?
  expect_eq "$proto: reattach sees the values put before" $'1\ntwo\n3' "$out"
  alive "$pid"; check "$proto: a reattaching host leaves the plugin running" $?
  out=$("$host" --reattach "$f" -- get c 2>"$tmp/err")
  expect_eq "$proto: and again" 3 "$out"

  # 3. A file naming a dead pid (same address): clear error, nothing killed.
  sleep 0 & dead=$!
  wait "$dead"
  rewrite "$f" "$tmp/dead.json" "$dead" 1
  out=$("$host" --reattach "$tmp/dead.json" -- get a 2>&1)
  expect_eq "$proto: reattach to a dead pid fails" 1 $?
  expect_contains "$proto: ... saying so" "$out" "no such process"
  out=$("$host" --reattach "$tmp/dead.json" --kill 2>&1)
  expect_eq "$proto: --kill of a dead pid fails" 1 $?
  [ -e "$tmp/dead.json" ]; check "$proto: ... and keeps its file" $?
  alive "$pid"; check "$proto: ... and the plugin at that address lives" $?

  # 4. A pid now used by another process (start time differs): refused.
  sleep 60 & stranger=$!
  pids+=("$stranger")
  rewrite "$f" "$tmp/reused.json" "$stranger" "$(json_int "$f" PidStartTime)"
  out=$("$host" --reattach "$tmp/reused.json" --kill 2>&1)
  expect_eq "$proto: --kill of a reused pid is refused" 1 $?
  expect_contains "$proto: ... saying why" "$out" "is another process now"
  out=$("$host" --reattach "$tmp/reused.json" -- get a 2>&1)
  expect_eq "$proto: reattach to a reused pid is refused" 1 $?
  alive "$stranger"; check "$proto: the other process survives" $?
  alive "$pid"; check "$proto: the plugin survives" $?
  kill "$stranger" 2>/dev/null

  # 5. --kill: graceful stop, the file is removed. The grace is scaled: a
  # sanitized plugin runs its leak check as it exits (over 1.4 s seen).
  grace=$(awk -v s="${GP_TEST_SCALE:-1}" 'BEGIN { if (s + 0 < 1) s = 1; print int(2000 * s) }')
  "$host" --kill-grace "$grace" --reattach "$f" --kill 2>"$tmp/err"
  expect_eq "$proto: --kill exits 0" 0 $?
  alive "$pid"; expect_eq "$proto: the plugin is gone" 1 $?
  [ -e "$f" ]; expect_eq "$proto: the file is removed" 1 $?
  expect_eq "$proto: graceful (no SIGKILL warning)" 0 "$(grep -c 'failed to exit gracefully' "$tmp/err")"
  out=$("$host" --reattach "$f" -- get a 2>&1)
  expect_eq "$proto: reattach after --kill fails" 1 $?
  expect_contains "$proto: ... no such file" "$out" "no such file"
done

# Usage errors.
out=$("$host" --reattach "$tmp/x.json" --kill get a 2>&1)
expect_contains "--kill takes no commands" "$out" "--kill takes no commands"
out=$("$host" --plugin "$plugin" --reattach "$tmp/x.json" -- get a 2>&1)
expect_contains "--plugin with --reattach is refused" "$out" "expected one of them"
out=$("$host" --kill 2>&1)
expect_contains "--kill needs --reattach" "$out" "--kill needs --reattach"
out=$("$host" --plugin "$plugin" --detach "$tmp/y.json" bench --mode latency 2>&1)
expect_contains "no bench with --detach" "$out" "bench cannot be combined"
echo "{" >"$tmp/garbage.json"
out=$("$host" --reattach "$tmp/garbage.json" -- get a 2>&1)
expect_contains "a garbled file is a clear error" "$out" "not a JSON object"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
