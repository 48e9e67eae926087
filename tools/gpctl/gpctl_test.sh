#!/bin/sh
# gpctl end to end in direct mode: install, ls, inspect, enable, disable,
# grant, rm, gc, with every exit status and the error lines checked.
# Usage: gpctl_test.sh PATH-OF-GPCTL
set -u
gpctl=$1
case $gpctl in /*) ;; *) gpctl=$(pwd)/$gpctl ;; esac
tmp=${TEST_TMPDIR:-/tmp}/gpctl_test.$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
fails=0
n=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run WANT_STATUS CMD...: stdout in $tmp/out, stderr in $tmp/err.
run() {
    want=$1
    shift
    n=$((n + 1))
    "$@" > "$tmp/out" 2> "$tmp/err"
    got=$?
    if [ "$got" != "$want" ]; then
        fail "exit $got, want $want: $*"
        sed 's/^/    stderr: /' "$tmp/err"
    fi
}
expect_out() { grep -q -- "$1" "$tmp/out" || { fail "stdout lacks \"$1\":"; sed 's/^/    /' "$tmp/out"; }; }
expect_err() { grep -q -- "$1" "$tmp/err" || { fail "stderr lacks \"$1\":"; sed 's/^/    /' "$tmp/err"; }; }

printf 'binary one\n' > "$tmp/p1"
printf 'binary two, longer\n' > "$tmp/p2"
sum1=$(sha256sum "$tmp/p1" | cut -c1-64)
sum2=$(sha256sum "$tmp/p2" | cut -c1-64)

# Usage errors: one line, exit 1 (as kv-host).
run 1 "$gpctl" ls
expect_err "gpctl: --root DIR is required"
run 1 "$gpctl" --root "$root" frobnicate
expect_err 'gpctl: unknown command "frobnicate"'
run 1 "$gpctl" --root "$root" install "$tmp/p1"
expect_err "PATH and NAME"
run 0 "$gpctl" --help

# ls of a root that does not exist yet: a clear error.
run 1 "$gpctl" --root "$root" ls
expect_err "no store at $root"

# install prints the id; ls shows it disabled, not running.
run 0 "$gpctl" --root "$root" install --proto grpc --cookie BASIC_PLUGIN=hello \
    --env MODE=test --require tcp "$tmp/p1" kv:1.0 -- --serve
id=$(cat "$tmp/out")
echo "$id" | grep -qE '^[0-9a-f]{64}$' || fail "install printed \"$id\", not an id"
run 0 "$gpctl" --root "$root" install --sha256 "$sum2" "$tmp/p2" other
id2=$(cat "$tmp/out")
run 1 "$gpctl" --root "$root" install --sha256 "$sum1" "$tmp/p2" third
expect_err "expected $sum1"
run 1 "$gpctl" --root "$root" install "$tmp/p1" kv
expect_err "already installed"
run 1 "$gpctl" --root "$root" install --grant root "$tmp/p1" fourth
expect_err "granted privilege \"root\" is not valid"
run 1 "$gpctl" --root "$root" install "$tmp/missing" fifth
expect_err "$tmp/missing"
run 0 "$gpctl" --root "$root" ls
expect_out "^kv:1.0 $id disabled -\$"
expect_out "^other:latest $id2 disabled -\$"
[ "$(wc -l < "$tmp/out")" = 2 ] || fail "ls printed $(wc -l < "$tmp/out") lines, want 2"

# inspect: the record.
run 0 "$gpctl" --root "$root" inspect kv
expect_out "\"digest\": \"sha256:$sum1\""
expect_out '"cookie_key": "BASIC_PLUGIN"'
expect_out '"MODE=test"'
expect_out '"--serve"'
run 0 "$gpctl" --root "$root" inspect "$id"
run 1 "$gpctl" --root "$root" inspect nope
expect_err 'no plugin "nope"'

# Privileges: enable refused until granted = required.
run 1 "$gpctl" --root "$root" enable kv
expect_err "required but not granted: \[tcp\]"
run 0 "$gpctl" --root "$root" grant kv tcp
run 0 "$gpctl" --root "$root" enable kv
run 0 "$gpctl" --root "$root" ls
expect_out "^kv:1.0 $id enabled -\$"

# A running plugin's pid comes from ROOT/run/NAME.json.
printf '{"Protocol":"grpc","ProtocolVersion":1,"Addr":{"Network":"unix","String":"/tmp/x"},"Pid":4242}' \
    > "$root/run/kv.json"
run 0 "$gpctl" --root "$root" ls
expect_out "^kv:1.0 $id enabled 4242\$"
rm "$root/run/kv.json"

# rm refused while enabled, -f removes; disable + rm also works.
run 1 "$gpctl" --root "$root" rm kv
expect_err "enabled"
run 0 "$gpctl" --root "$root" rm -f kv
run 0 "$gpctl" --root "$root" enable other
run 0 "$gpctl" --root "$root" disable other
run 0 "$gpctl" --root "$root" disable other
run 0 "$gpctl" --root "$root" ls
expect_out "^other:latest $id2 disabled -\$"

# gc frees kv's blob only.
size1=$(wc -c < "$tmp/p1")
run 0 "$gpctl" --root "$root" gc
expect_out "^1 blob, $size1 bytes freed\$"
[ -e "$root/blobs/sha256/$sum1" ] && fail "kv's blob is still there"
[ -x "$root/blobs/sha256/$sum2" ] || fail "other's blob is gone or not executable"
run 0 "$gpctl" --root "$root" gc
expect_out "^0 blobs, 0 bytes freed\$"
run 0 "$gpctl" --root "$root" rm other
run 0 "$gpctl" --root "$root" gc
expect_out "^1 blob, "

# A corrupt record is reported and skipped, the others still work.
run 0 "$gpctl" --root "$root" install "$tmp/p1" good
run 0 "$gpctl" --root "$root" install "$tmp/p2" bad
bad=$(cat "$tmp/out")
printf '{"version": 1, "na' > "$root/plugins/$bad/config.json"
run 0 "$gpctl" --root "$root" ls
expect_out "^good:latest "
expect_err "gpctl: warning: $root/plugins/$bad/config.json: corrupt record"
grep -q "^bad" "$tmp/out" && fail "the corrupt record was listed"

# The lock: held by another process, a change is refused with its pid.
( exec 9> "$root/lock"; flock -x 9; echo 99999 >&9; sleep 30 ) &
holder=$!
i=0
while ! grep -q 99999 "$root/lock" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run 1 "$gpctl" --root "$root" enable good
expect_err "store is locked by a running gpctl serve (pid 99999)"
[ "$(wc -l < "$tmp/err")" = 1 ] || fail "locked: more than one line on stderr"
run 0 "$gpctl" --root "$root" ls    # reading needs no lock
kill "$holder"
wait "$holder" 2>/dev/null
run 0 "$gpctl" --root "$root" enable good

if [ "$fails" = 0 ]; then
    echo "ok: $n gpctl runs"
    exit 0
fi
echo "$fails failures in $n gpctl runs"
exit 1
