#!/usr/bin/env bash
# The manager's lifecycle through gpctl, with real processes (issue 14):
# install -> enable -> serve -> kv-host --reattach ROOT/run/kv.json put/get
# (and a Go host on go-plugin 1.0.1 reading the same file) -> SIGKILL the
# plugin -> restarted (new pid, run file updated) -> a go-plugin 1.0.1 Go
# plugin installed and enabled through the running serve -> SIGKILL serve
# (--live-restore) -> a new serve adopts the same pid, data intact -> a
# tampered blob refused at enable naming both digests -> SIGTERM with and
# without --live-restore -> disable -> rm -> gc frees the blobs.
# Usage: lifecycle_test.sh GPCTL KV_HOST KV_PLUGIN GO_KV_PLUGIN GO_REATTACH_HOST
set -uo pipefail
gpctl=$1 host=$2 plugin=$3 goplugin=$4 gohost=$5
for f in "$gpctl" "$host" "$plugin" "$goplugin" "$gohost"; do
  [ -x "$f" ] || { echo "FAIL missing peer $f"; exit 1; }
done
fails=0 passes=0
# Short: ROOT holds the plugins' reattach files and the control socket.
tmp=$(mktemp -d /tmp/gpctl-life-XXXXXX)
root=$tmp/root
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for f in "$root"/run/*.json; do
    p=$(json_int "$f" Pid 2>/dev/null)
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi; }
expect_contains() { case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: $2"; check "$1" 1; return 1 ;; esac; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
json_int() { sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1" 2>/dev/null; }
json_str() { sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$1" 2>/dev/null; }
G() { "$gpctl" --root "$root" "$@"; }
run_pid() { json_int "$root/run/$1.json" Pid; }
# wait_until CMD...: up to 30 s for CMD to succeed (a loaded machine).
wait_until() {
  for _ in $(seq 300); do "$@" && return 0; sleep 0.1; done
  return 1
}
ls_field() { G ls | awk -v n="$1" '$1 ~ "^"n":" {print $'"$2"'}'; }
serve_pid=
start_serve() { # LOG [--live-restore]
  local log=$1
  shift
  "$gpctl" --root "$root" serve "$@" 2>>"$log" & # not G: $! must be gpctl itself
  serve_pid=$!
  pids+=("$serve_pid")
  wait_until grep -q "gpctl serve: serving" "$log"
}
pid_changed() { local p; p=$(run_pid "$1"); [ -n "$p" ] && [ "$p" != "$2" ] && alive "$p"; }

# ---- 1. install and enable with no serve: the store edited directly ----
# Debug logging: ROOT/logs/kv.stderr then says what the plugin saw (printed
# when a check fails).
id=$(G install --proto grpc --env KV_PLUGIN_LOG_LEVEL=debug --cookie BASIC_PLUGIN=hello "$plugin" kv 2>"$tmp/err")
expect_eq "install exits 0" 0 $?
[[ "$id" =~ ^[0-9a-f]{64}$ ]]; check "install prints the id (64 hex)" $?
expect_eq "ls: installed, disabled, no pid" "kv:latest $id disabled -" "$(G ls)"
G enable kv 2>"$tmp/err"
expect_eq "enable (direct) exits 0" 0 $?
[ -e "$root/run/kv.json" ]; expect_eq "no run file without a serve" 1 $?

# ---- 2. serve starts the enabled plugin and publishes its run file ----
start_serve "$tmp/serve1.log" --live-restore
check "serve --live-restore comes up" $?
wait_until test -s "$root/run/kv.json"; check "run/kv.json is published" $?
pid1=$(run_pid kv)
alive "$pid1"; check "the plugin runs (pid $pid1)" $?
expect_eq "ls shows its pid" "$pid1" "$(ls_field kv 4)"
expect_eq "the run file is private" 600 "$(stat -c %a "$root/run/kv.json")"
expect_eq "the run file is go-plugin's ReattachConfig" "grpc unix" \
  "$(json_str "$root/run/kv.json" Protocol) $(json_str "$root/run/kv.json" Network)"
expect_contains "serve logs events tagged with the name" "$(cat "$tmp/serve1.log")" \
  "event start kv pid=$pid1 adopted=false"

out=$("$host" --reattach "$root/run/kv.json" -- put a 1 get a 2>"$tmp/err")
expect_eq "kv-host --reattach run/kv.json put/get" "0 1" "$? $out"
out=$("$gohost" "$root/run/kv.json" get a 2>"$tmp/err")
expect_eq "a go-plugin 1.0.1 host reads the same run file" "0 1" "$? $out"
alive "$pid1"; check "hosts leave the managed plugin running" $?

# ---- 3. SIGKILL the plugin: restarted, new pid, run file updated ----
kill -9 "$pid1"
wait_until pid_changed kv "$pid1"; check "restarted after SIGKILL (run file updated)" $?
pid2=$(run_pid kv)
expect_contains "serve reports exit and restart" "$(cat "$tmp/serve1.log")" "event restart kv"
expect_eq "ls shows the new pid" "$pid2" "$(ls_field kv 4)"
out=$("$host" --reattach "$root/run/kv.json" -- put a 2 get a 2>"$tmp/err")
expect_eq "the new plugin answers" "0 2" "$? $out"

# ---- 4. a go-plugin 1.0.1 plugin, installed and enabled through serve ----
gid=$(G install --env KV_PLUGIN_PROTO=grpc --cookie BASIC_PLUGIN=hello "$goplugin" gokv 2>"$tmp/err")
expect_eq "install through serve exits 0" 0 $?
[[ "$gid" =~ ^[0-9a-f]{64}$ ]]; check "... and prints the id" $?
expect_contains "serve reports the install" "$(cat "$tmp/serve1.log")" "event install gokv"
G enable gokv 2>"$tmp/err"
expect_eq "enable through serve exits 0" 0 $?
[ -s "$root/run/gokv.json" ]; check "... and the Go plugin runs at once (run file)" $?
gpid=$(run_pid gokv)
out=$("$host" --reattach "$root/run/gokv.json" -- put g 7 get g 2>"$tmp/err")
expect_eq "kv-host uses the managed Go plugin" "0 7" "$? $out"

# ---- 5. SIGKILL serve (--live-restore): the next serve adopts ----
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null
sleep 0.3
alive "$pid2"; check "the plugin outlives a SIGKILLed serve" $?
alive "$gpid"; check "so does the Go plugin" $?
expect_eq "its run file stays" "$pid2" "$(run_pid kv)"
start_serve "$tmp/serve2.log" --live-restore
check "a new serve comes up (stale socket replaced)" $?
expect_contains "the new serve adopts the same pid" "$(cat "$tmp/serve2.log")" \
  "event start kv pid=$pid2 adopted=true" ||
  { echo "  the plugin's stderr:"; tail -20 "$root/logs/kv.stderr" | sed 's/^/    /'; }
expect_eq "ls still shows that pid" "$pid2" "$(ls_field kv 4)"
out=$("$host" --reattach "$root/run/kv.json" -- get a 2>"$tmp/err")
expect_eq "its data is intact" "0 2" "$? $out"
# The Go plugin lived on too, logging into ROOT/logs (not into a pipe of
# the dead serve, whose EPIPE would have killed it with SIGPIPE).
expect_contains "the Go plugin is adopted too" "$(cat "$tmp/serve2.log")" \
  "event start gokv pid=$gpid adopted=true"
out=$("$host" --reattach "$root/run/gokv.json" -- get g put h 8 get h 2>"$tmp/err")
expect_eq "the Go plugin kept its data and answers" "0 7 8" "$? $(echo $out)"
alive "$gpid"; check "... and is alive after logging" $?
[ -s "$root/logs/gokv.stderr" ]; check "its output went to ROOT/logs/gokv.stderr" $?
G disable gokv 2>"$tmp/err"
expect_eq "disable through serve exits 0" 0 $?
[ -e "$root/run/gokv.json" ]; expect_eq "... its run file is gone at once" 1 $?
wait_until bash -c "! kill -0 $gpid 2>/dev/null"; check "... and so is the Go plugin" $?

# ---- 6. a tampered blob is refused at start, naming both digests ----
cp "$plugin" "$tmp/kv-plugin-2" && printf 'padding' >>"$tmp/kv-plugin-2"
tid=$(G install --cookie BASIC_PLUGIN=hello "$tmp/kv-plugin-2" kvt 2>"$tmp/err")
expect_eq "install a second kv" 0 $?
want=$(sha256sum "$tmp/kv-plugin-2" | cut -c1-64)
blob=$root/blobs/sha256/$want
[ -f "$blob" ]; check "its blob is named by its SHA-256" $?
chmod u+w "$blob" && printf 'tampered' >>"$blob"
have=$(sha256sum "$blob" | cut -c1-64)
out=$(G enable kvt 2>&1)
expect_eq "enable of a tampered blob exits 1" 1 $?
expect_contains "... naming the recorded digest" "$out" "expected $want"
expect_contains "... and the file's" "$out" "binary has $have"
expect_eq "... and it stays disabled" "disabled -" "$(ls_field kvt 3) $(ls_field kvt 4)"
[ -e "$root/run/kvt.json" ]; expect_eq "... with no run file" 1 $?
out=$(G rm kv 2>&1)
expect_eq "rm of an enabled plugin through serve is refused" 1 $?
expect_contains "... saying why" "$out" "enabled"
alive "$pid2"; check "... and the plugin runs on" $?
G rm kvt 2>"$tmp/err"
expect_eq "rm through serve exits 0" 0 $?
out=$(G gc 2>"$tmp/err")
expect_eq "gc through serve exits 0" "0 1 blob" "$? $(echo "$out" | cut -d, -f1)"
[ -e "$blob" ]; expect_eq "... and the tampered blob is gone" 1 $?

# ---- 6b. commands are answered at once: an enable whose plugin never
# answers (the start timeout is 60 s) holds up neither other commands nor
# a disable of that plugin ----
printf '#!/bin/sh\nexec sleep 600\n' >"$tmp/silent.sh" && chmod +x "$tmp/silent.sh"
gpctl_abs=$(realpath "$gpctl")
(cd "$tmp" && "$gpctl_abs" --root "$root" install --cookie BASIC_PLUGIN=hello silent.sh silent) \
  >/dev/null 2>"$tmp/err"
expect_eq "install through serve takes a path relative to gpctl's directory" 0 $?
t0=$(date +%s%N)
G enable silent 2>"$tmp/silent.err" &
enabler=$!
wait_until grep -q "event enable silent" "$tmp/serve2.log"; check "an enable that will not finish is under way" $?
out=$(G gc 2>&1)
expect_eq "gc through serve answers meanwhile" "0" "$?"
G disable silent 2>"$tmp/err"
expect_eq "a disable of the starting plugin answers" 0 $?
wait "$enabler"
expect_eq "the waiting enable exits 1" 1 $?
expect_contains "... saying why" "$(cat "$tmp/silent.err")" "plugin silent was disabled or removed while it started"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 30000 ]; check "... all within 30 s, not after the 60 s start timeout ($ms ms)" $?
expect_eq "the silent plugin is disabled, with no pid" "disabled -" "$(ls_field silent 3) $(ls_field silent 4)"
G rm silent 2>"$tmp/err"
expect_eq "rm silent exits 0" 0 $?
out=$(G gc 2>"$tmp/err")
expect_eq "gc frees its blob" "0 1 blob" "$? $(echo "$out" | cut -d, -f1)"

# ---- 6c. a client that trickles its request (a byte every 0.8 s) has 5 s
# for all of it, not 5 s per byte: it cannot hold a worker, or a stop ----
out=$(timeout 60 python3 - "$root/gpctl.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(0.2)
t0, got = time.monotonic(), b""
s.sendall(b"gpctl/1 1\n")
for c in b"/tmp/a-directory-sent-one-byte-at-a-time\n":
    try:
        s.send(bytes([c]))
    except OSError:
        pass  # serve has answered and closed: read what it said
    try:
        d = s.recv(4096)
        got += d
        if not d or b"exit " in got:
            break
    except socket.timeout:
        pass
    except OSError:
        break
    time.sleep(0.8)
print(int((time.monotonic() - t0) * 1000), got.decode().strip().replace("\n", "|"))
PY
)
ms=${out%% *}
expect_contains "a trickled request is refused" "$out" "|exit 1"
[ "${ms:-99999}" -lt 15000 ]; check "... after the 5 s for the whole request ($ms ms; all of it would take 33 s)" $?

# ---- 7. SIGTERM: with --live-restore the plugin stays; without, it stops ----
kill -TERM "$serve_pid"
wait "$serve_pid"
expect_eq "SIGTERM: serve --live-restore exits 0" 0 $?
alive "$pid2"; check "... leaving the plugin running" $?
[ -e "$root/gpctl.sock" ]; expect_eq "... and removing its socket" 1 $?
start_serve "$tmp/serve3.log"
check "serve (no live restore) comes up" $?
expect_contains "... adopts the plugin" "$(cat "$tmp/serve3.log")" "event start kv pid=$pid2 adopted=true"
# An enable waiting for a plugin that never answers does not hold up the
# stop: the stop ends the wait (before, up to the 60 s start timeout).
G install --cookie BASIC_PLUGIN=hello "$tmp/silent.sh" silent2 >/dev/null 2>"$tmp/err"
expect_eq "install silent2" 0 $?
G enable silent2 2>"$tmp/silent2.err" &
enabler=$!
wait_until grep -q "event enable silent2" "$tmp/serve3.log"; check "an enable that will not finish is under way" $?
sleep 0.2
t0=$(date +%s%N)
kill -TERM "$serve_pid"
wait "$serve_pid"
expect_eq "SIGTERM: serve exits 0" 0 $?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 30000 ]; check "... within 30 s of SIGTERM, not after the 60 s start timeout ($ms ms)" $?
wait "$enabler"
expect_eq "the waiting enable exits 1" 1 $?
expect_contains "... saying why" "$(cat "$tmp/silent2.err")" \
  "manager: shutting down while plugin silent2 started; it stays enabled and starts with the next manager"
expect_eq "silent2 stays enabled, with no pid" "enabled -" "$(ls_field silent2 3) $(ls_field silent2 4)"
# The next serve's restore waits for silent2's first start (60 s): a
# SIGTERM meanwhile is taken at once, and ends that wait.
# A process this serve launched carries GP_MANAGER_SELF=<its pid>.<time>.
# (grep's own status is 2 when a process vanished as it read, so its
# output decides.)
launched_by() {
  local hits
  hits=$(grep -lz "^GP_MANAGER_SELF=$1\\." /proc/[0-9]*/environ 2>/dev/null | tr '\0' ' ')
  [ -n "$hits" ]
}
"$gpctl" --root "$root" serve 2>>"$tmp/serve4.log" &
serve_pid=$!
pids+=("$serve_pid")
wait_until launched_by "$serve_pid"; check "serve restores (its launches run)" $?
t0=$(date +%s%N)
kill -TERM "$serve_pid"
wait "$serve_pid"
expect_eq "SIGTERM during restore: serve exits 0" 0 $?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 30000 ]; check "... within 30 s, not after the 60 s start timeout ($ms ms)" $?
grep -q "gpctl serve: serving" "$tmp/serve4.log"; expect_eq "... without saying serving" 1 $?
launched_by "$serve_pid"; expect_eq "... and no process it launched is left" 1 $?
expect_eq "silent2 is still enabled" "enabled" "$(ls_field silent2 3)"
G disable silent2 2>"$tmp/err" && G rm silent2 2>>"$tmp/err"
expect_eq "disable and rm silent2 (direct) exit 0" 0 $?
out=$(G gc 2>"$tmp/err")
expect_eq "gc frees its blob" "0 1 blob" "$? $(echo "$out" | cut -d, -f1)"
wait_until bash -c "! kill -0 $pid2 2>/dev/null"; check "... having stopped the plugin" $?
expect_contains "... gracefully" "$(cat "$tmp/serve3.log")" "event exit kv pid=$pid2 reason=stopped"
[ -e "$root/run/kv.json" ]; expect_eq "... and removed its run file" 1 $?

# ---- 8. disable, rm, gc (direct again: no serve) ----
G rm kv 2>"$tmp/err"
expect_eq "rm of an enabled plugin is refused" 1 $?
G disable kv 2>"$tmp/err"
expect_eq "disable (direct) exits 0" 0 $?
for n in kv gokv; do
  G rm "$n" 2>"$tmp/err"
  expect_eq "rm $n exits 0" 0 $?
done
expect_eq "ls is empty" "" "$(G ls)"
out=$(G gc 2>"$tmp/err")
expect_eq "gc exits 0" 0 $?
expect_contains "gc frees the two blobs left" "$out" "2 blobs, "
expect_eq "the blob folder is empty" "" "$(ls "$root/blobs/sha256")"

# A failure seen once in ~30 loaded runs could not be reproduced: say
# everything the next one needs (what each serve saw, what the plugins said).
if [ "$fails" -ne 0 ]; then
  for f in "$tmp"/serve*.log "$root"/logs/*; do
    [ -f "$f" ] && { echo "--- ${f#"$tmp"/} (last 40 lines)"; tail -n 40 "$f" | cut -c1-400; }
  done
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
