#!/bin/sh
# The AutoMTLS certificate checked by two parsers the C code does not share:
# Go's crypto/x509 (what go-plugin uses) and the openssl CLI; and its DER
# laid side by side with one Go makes from go-plugin's template.
#   certcheck_test.sh AUTOCERT_TOOL CERTCHECK GO_TLSPEER
set -eu
autocert=$1
certcheck=$2
gopeer=$3
dir=$(mktemp -d "${TEST_TMPDIR:-/tmp}/certcheck.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/ok" "$dir/expired"

"$autocert" "$dir/ok"
"$certcheck" "$dir/ok"
"$autocert" "$dir/expired" expired
"$certcheck" "$dir/expired" expired

if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl CLI not installed: skipping the openssl half"
    exit 0
fi
cert="$dir/ok/cert.pem"
openssl x509 -in "$cert" -noout -text >"$dir/text"
fail=0
expect() {
    if ! grep -q -- "$1" "$dir/text"; then
        echo "FAIL: openssl x509 -text lacks: $1"
        fail=1
    fi
}
expect "Signature Algorithm: ecdsa-with-SHA512"
expect "Issuer: O = HashiCorp, CN = localhost"
expect "Subject: O = HashiCorp, CN = localhost"
expect "NIST CURVE: P-521"
expect "X509v3 Basic Constraints: critical"
expect "CA:TRUE"
expect "X509v3 Key Usage: critical"
expect "Digital Signature, Key Encipherment, Key Agreement, Certificate Sign"
expect "DNS:localhost"
expect "TLS Web Client Authentication, TLS Web Server Authentication"
expect "X509v3 Subject Key Identifier"
if grep -q "Authority Key Identifier" "$dir/text"; then
    echo "FAIL: authority key identifier present (Go omits it)"
    fail=1
fi
# no NULL parameter in the signature AlgorithmIdentifier (RFC 5758, Go)
if openssl asn1parse -in "$cert" | grep -q "prim: NULL"; then
    echo "FAIL: NULL in an AlgorithmIdentifier"
    fail=1
fi
openssl verify -CAfile "$cert" -purpose sslserver "$cert" >/dev/null || fail=1
openssl verify -CAfile "$cert" -purpose sslclient "$cert" >/dev/null || fail=1
openssl x509 -in "$cert" -noout -checkhost localhost | grep -q "does match" || fail=1
openssl ec -in "$dir/ok/key.pem" -noout -check 2>/dev/null || { echo "FAIL: openssl ec -check"; fail=1; }
openssl x509 -in "$cert" -outform DER | cmp -s - "$dir/ok/cert.der" || { echo "FAIL: DER is not the PEM's"; fail=1; }

# Same DER structure as Go's: every tag at every depth, OIDs, names and
# flags; only lengths and random or time-dependent values may differ.
mkdir "$dir/go"
"$gopeer" gencert "$dir/go"
shape() {
    openssl asn1parse -in "$1" |
        sed -E 's/^ *[0-9]+:(d=[0-9]+) +hl= *[0-9]+ +l= *[0-9]+ (cons|prim): */\1 /' |
        sed -E 's/^(d=[0-9]+ (INTEGER|UTCTIME|GENERALIZEDTIME|BIT STRING|OCTET STRING) *).*/\1/; s/ +$//'
}
shape "$cert" >"$dir/c.shape"
shape "$dir/go/cert.pem" >"$dir/go.shape"
if ! diff "$dir/c.shape" "$dir/go.shape"; then
    echo "FAIL: DER structure differs from Go's (< ours, > Go's)"
    fail=1
fi
[ "$fail" = 0 ] && echo "openssl: ok, DER structure identical to Go's ($(wc -l <"$dir/c.shape") items)"
exit "$fail"
