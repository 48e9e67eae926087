#!/bin/sh
# Bidirectional brokering across languages: C host <-> Go plugin and Go host
# <-> C plugin (go-plugin 1.0.1), over grpc and netrpc; C <-> C and Go <-> Go
# as references. Usage: counter_interop_test.sh CHOST CPLUGIN GOHOST GOPLUGIN
set -u
CHOST=$1 CPLUGIN=$2 GOHOST=$3 GOPLUGIN=$4
pass=0 failn=0
errf=${TEST_TMPDIR:-/tmp}/counter_interop_stderr.$$
trap 'rm -f "$errf"' EXIT
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok   $1"
    else failn=$((failn + 1)); echo "FAIL $1: expected [$2], got [$3]"; return 1; fi
}
for proto in grpc netrpc; do
    for pair in "C:$CHOST:Go:$GOPLUGIN" "Go:$GOHOST:C:$CPLUGIN" "C:$CHOST:C:$CPLUGIN" "Go:$GOHOST:Go:$GOPLUGIN"; do
        hn=${pair%%:*}; rest=${pair#*:}; host=${rest%%:*}; rest=${rest#*:}
        pn=${rest%%:*}; plugin=${rest#*:}
        # stdout is the answer; stderr (go-plugin 1.0.1's host may warn about
        # the plugin's exit on netrpc) is shown only when the answer is wrong.
        out=$("$host" --plugin "$plugin" --proto $proto -- put a 3 put a 4 get a put b -10 get b get zz 2>"$errf")
        check "$proto: $hn host -> $pn plugin: exit 0" 0 $? || cat "$errf"
        check "$proto: $hn host -> $pn plugin -> $hn AddHelper" "$(printf '7\n-10\n0')" "$out" || cat "$errf"
    done
done
echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
