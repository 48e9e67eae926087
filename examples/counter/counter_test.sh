#!/bin/sh
# counter-host drives counter-plugin; every put goes through the broker
# (the plugin dials the host's AddHelper back). Usage: counter_test.sh HOST PLUGIN
# Every run must exit 0: counter-host exits 1 when its plugin ended badly
# (under --config=asan, a leak report makes the plugin exit non-zero).
set -u
HOST=$1 PLUGIN=$2
pass=0 failn=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok   $1"
    else failn=$((failn + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi
}
for proto in grpc netrpc; do
    out=$("$HOST" --plugin "$PLUGIN" --proto $proto -- put a 3 put a 4 get a put b -2 get b get c 2>&1)
    check "$proto: put/get exits 0" 0 $?
    check "$proto: put/get through the broker" "$(printf '7\n-2\n0')" "$out"
    out=$("$HOST" --plugin "$PLUGIN" --proto $proto -- put x 1 put x 1 put x 1 put x 1 put x 1 get x 2>&1)
    check "$proto: five callbacks exit 0" 0 $?
    check "$proto: five callbacks in one session" "5" "$out"
done
# Under --config=asan both binaries are instrumented: the plugin's report
# (leaks at exit) reaches the host's log at debug level.
for proto in grpc netrpc; do
    out=$(COUNTER_HOST_LOG_LEVEL=debug "$HOST" --plugin "$PLUGIN" --proto $proto -- put k 2 get k 2>&1)
    check "$proto: debug run exits 0" 0 $?
    case $out in *Sanitizer*) san=yes ;; *) san=no ;; esac
    check "$proto: no sanitizer report from host or plugin" "no" "$san"
done
echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
