#!/bin/sh
# C mbedTLS stream <-> Go crypto/tls with go-plugin's AutoMTLS settings, both
# directions, and the refusals each side must put into words.
#   interop_test.sh AUTOCERT_TOOL TLS_PEER_TOOL GO_TLSPEER
set -u
autocert=$1
cpeer=$2
gopeer=$3
dir=$(mktemp -d /tmp/gptls.XXXXXX) # short: unix socket paths
trap 'rm -rf "$dir"' EXIT
for d in host plugin other expired; do mkdir "$dir/$d"; done
for d in host plugin other; do "$autocert" "$dir/$d" || exit 1; done
"$autocert" "$dir/expired" expired || exit 1

fails=0
n=0
# run SERVER_CMD... -- CLIENT_CMD...: server in the background, client when
# the socket exists; outputs in $dir/srv.out and $dir/cli.out.
run() {
    n=$((n + 1))
    sock="$dir/s$n"
    srv=$1
    shift
    "$srv" server "$sock" "$1" "$2" >"$dir/srv.out" 2>&1 &
    pid=$!
    shift 2
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    "$@" >"$dir/cli.out" 2>&1
    cli_rc=$?
    wait "$pid"
    srv_rc=$?
}
# rc SERVER CLIENT: both peers' exit statuses (a sanitizer report in a C
# peer turns its 0 or 1 into something else).
rc() {
    if [ "$srv_rc" != "$1" ] || [ "$cli_rc" != "$2" ]; then
        echo "FAIL [$case]: expected exit statuses server $1, client $2, got $srv_rc, $cli_rc"
        fails=$((fails + 1))
    fi
}
expect() { # FILE TEXT
    if ! grep -qF -- "$2" "$dir/$1"; then
        echo "FAIL [$case]: $1 lacks \"$2\":"
        sed 's/^/    /' "$dir/$1"
        fails=$((fails + 1))
    fi
}
show() { echo "[$case]"; sed 's/^/    /' "$dir/srv.out" "$dir/cli.out"; }

case="Go plugin (server) <- C host (client), 1 MiB echo"
run "$gopeer" "$dir/plugin" "$dir/host/cert.pem" "$cpeer" client "$dir/s$((n + 1))" "$dir/host" "$dir/plugin/cert.pem" 1048576
show; expect cli.out "tls_peer_tool: ok client got back 1048576 bytes, TLSv1.2"; expect srv.out "tlspeer: ok server echoed 1048576"
rc 0 0

case="C plugin (server) <- Go host (client), 1 MiB echo"
run "$cpeer" "$dir/plugin" "$dir/host/cert.pem" "$gopeer" client "$dir/s$((n + 1))" "$dir/host" "$dir/plugin/cert.pem" 1048576
show; expect cli.out "tlspeer: ok client got 1048576 bytes back, version 303"; expect srv.out "tls_peer_tool: ok server echoed 1048576 bytes"
rc 0 0

case="Go server presents a cert other than field 6's"
run "$gopeer" "$dir/other" "$dir/host/cert.pem" "$cpeer" client "$dir/s$((n + 1))" "$dir/host" "$dir/plugin/cert.pem" 10
show; expect cli.out "tls: peer certificate not trusted: The certificate is not correctly signed by the trusted CA (the server's certificate, checked by this client)"
rc 1 1
expect srv.out "remote error: tls: unknown certificate authority"

case="Go server presents an expired cert"
run "$gopeer" "$dir/expired" "$dir/host/cert.pem" "$cpeer" client "$dir/s$((n + 1))" "$dir/host" "$dir/expired/cert.pem" 10
show; expect cli.out "The certificate validity has expired"
rc 1 1

case="Go host presents a cert other than PLUGIN_CLIENT_CERT's"
run "$cpeer" "$dir/plugin" "$dir/host/cert.pem" "$gopeer" client "$dir/s$((n + 1))" "$dir/other" "$dir/plugin/cert.pem" 10
show; expect srv.out "tls: peer certificate not trusted: The certificate is not correctly signed by the trusted CA (the client's certificate, checked by this server)"
rc 1 1
expect cli.out "remote error: tls: unknown certificate authority"

case="Go host presents no cert"
run "$cpeer" "$dir/plugin" "$dir/host/cert.pem" "$gopeer" client "$dir/s$((n + 1))" none "$dir/plugin/cert.pem" 10
show; expect srv.out "tls: the client presented no certificate; this server requires one"
rc 1 1
expect cli.out "remote error: tls: bad certificate"

case="Go plugin refuses the C host's cert"
run "$gopeer" "$dir/plugin" "$dir/host/cert.pem" "$cpeer" client "$dir/s$((n + 1))" "$dir/other" "$dir/plugin/cert.pem" 10
show; expect cli.out "tls: the server refused the handshake with alert bad_certificate (42): it did not accept this client's certificate"
rc 1 1
expect srv.out "tls: failed to verify client certificate"

# A certificate made by Go the way go-plugin makes it, handed over as
# handshake field 6 (what a C host gets from a Go plugin).
mkdir "$dir/goplugin"
"$gopeer" gencert "$dir/goplugin" || exit 1

case="Go-made AutoMTLS cert via field 6: Go plugin <- C host"
run "$gopeer" "$dir/goplugin" "$dir/host/cert.pem" "$cpeer" client "$dir/s$((n + 1))" "$dir/host" "$dir/goplugin/field.txt" 65536
show; expect cli.out "tls_peer_tool: ok client got back 65536 bytes"; expect srv.out "tlspeer: ok server echoed 65536"
rc 0 0

case="Go-made host cert: C plugin <- Go host"
run "$cpeer" "$dir/plugin" "$dir/goplugin/cert.pem" "$gopeer" client "$dir/s$((n + 1))" "$dir/goplugin" "$dir/plugin/field.txt" 65536
show; expect srv.out "tls_peer_tool: ok server echoed 65536 bytes"
rc 0 0

echo "interop: $n cases, $fails failed checks"
[ "$fails" = 0 ]
