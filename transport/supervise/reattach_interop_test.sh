#!/bin/sh
# Reattach files between go-plugin 1.0.1 (Go) and goplugin-c, both ways.
# Args: REATTACH_GO (built by //bazel:go.bzl) REATTACH_TOOL
set -eu
RG=$1
TOOL=$2
work=${TEST_TMPDIR:-$(mktemp -d)}
f=$work/reattach.json
fails=0
expect() {  # expect NAME WANT GOT
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected [$2], got [$3]"
        fails=$((fails + 1))
    fi
}

"$RG" write "$f" grpc unix /tmp/plugin-sock 4242
got=$("$TOOL" read "$f") # set -e: a tool that fails fails the test
expect go_writes_c_reads_unix \
    "protocol=grpc network=unix addr=/tmp/plugin-sock pid=4242 version=0 test=false" \
    "$got"

"$RG" write "$f" netrpc tcp 127.0.0.1:10001 77
got=$("$TOOL" read "$f") # set -e: a tool that fails fails the test
expect go_writes_c_reads_tcp \
    "protocol=netrpc network=tcp addr=127.0.0.1:10001 pid=77 version=0 test=false" \
    "$got"

"$TOOL" write "$f" grpc tcp 127.0.0.1:1234 99 5 true
got=$("$RG" read "$f") # set -e: a tool that fails fails the test
expect c_writes_go_reads_tcp \
    "protocol=grpc network=tcp addr=127.0.0.1:1234 pid=99 version=5 test=true" \
    "$got"

"$TOOL" write "$f" netrpc unix /run/p.sock 1 0 false
got=$("$RG" read "$f") # set -e: a tool that fails fails the test
expect c_writes_go_reads_unix \
    "protocol=netrpc network=unix addr=/run/p.sock pid=1 version=0 test=false" \
    "$got"

# go-plugin's own struct marshalled as is: Addr is a net.Addr interface, so
# it comes out as {"Name","Net"}; goplugin-c says exactly what is wrong.
"$RG" rawwrite "$f" grpc unix /tmp/raw 5
got=$("$TOOL" read "$f" 2>&1 || true)
case $got in
*'unknown key "Name" in "Addr"'*) echo "ok   raw_struct_refused_clearly" ;;
*) echo "FAIL raw_struct_refused_clearly: got [$got]"; fails=$((fails + 1)) ;;
esac

echo "$((5 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
