#!/bin/sh
# Golden files and bad input for protoc-gen-goplugin-c.
#   golden_test.sh GENERATOR PROTOC WKT_FILE... [--update]
# Runs protoc with the generator on testdata/*.proto (both outputs: the C
# pair and the nanopb .options) and diffs them against testdata/golden/.
# With --update (under `bazel run`) it rewrites the golden files instead.
set -u
GEN=$(pwd)/$1
PROTOC=$2
shift 2
WKT=""
UPDATE=0
for a in "$@"; do
    case "$a" in
    --update) UPDATE=1 ;;
    */google/protobuf/*) [ -n "$WKT" ] || WKT=${a%%/google/protobuf/*} ;;
    esac
done
D=codegen/protoc-gen-goplugin-c
TMP=${TEST_TMPDIR:-$(mktemp -d)}/golden
rm -rf "$TMP"
mkdir -p "$TMP/out"
fails=0
passes=0
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

run_protoc() { # run_protoc OUTSPEC PROTO -> stderr in $TMP/err
    "$PROTOC" -I. -I"$WKT" --plugin=protoc-gen-goplugin-c="$GEN" "$@" 2>"$TMP/err"
}

for proto in $D/testdata/*.proto; do
    base=$(basename "$proto" .proto)
    if ! run_protoc --goplugin-c_out="$TMP/out" --goplugin-c_out=options:"$TMP/out" "$proto"; then
        fail "protoc on $proto: $(cat "$TMP/err")"
        continue
    fi
    for ext in gp.h gp.c options; do
        got="$TMP/out/$D/testdata/$base.$ext"
        want="$D/testdata/golden/$base.$ext"
        if [ "$UPDATE" = 1 ]; then
            cp "$got" "$BUILD_WORKSPACE_DIRECTORY/$want" && echo "updated $want"
        elif diff -u "$want" "$got" >"$TMP/diff"; then
            pass
        else
            fail "$base.$ext differs from $want:"
            cat "$TMP/diff" >&2
        fi
    done
done
[ "$UPDATE" = 1 ] && exit 0

# expect_protoc_error WORDS ARGS...: protoc fails and says WORDS.
expect_protoc_error() {
    words=$1
    shift
    if run_protoc "$@"; then
        fail "protoc $* succeeded; expected an error saying '$words'"
    elif grep -q -- "$words" "$TMP/err"; then
        pass
    else
        fail "protoc $*: expected '$words' in: $(cat "$TMP/err")"
    fi
}
expect_protoc_error "unknown parameter \"nonsense\"" \
    --goplugin-c_out=nonsense:"$TMP/out" $D/testdata/kv.proto
expect_protoc_error "method S.int is named like a C keyword" \
    --goplugin-c_out="$TMP/out" $D/testdata/bad/keyword.proto

# Bytes that are no CodeGeneratorRequest: words on stderr, exit status 1.
printf '\377\377\377\377\377\377\377\377\377\377\377\017 hello' >"$TMP/garbage"
"$GEN" <"$TMP/garbage" >"$TMP/stdout" 2>"$TMP/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "bad request: CodeGeneratorRequest does not decode" "$TMP/err" &&
    [ ! -s "$TMP/stdout" ]; then
    pass
else
    fail "garbage request: exit $rc, stderr: $(cat "$TMP/err")"
fi
# Half a real request.
head -c 400 $D/testdata/corpus/kv_request.bin >"$TMP/half"
"$GEN" <"$TMP/half" >"$TMP/stdout" 2>"$TMP/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "does not decode" "$TMP/err"; then
    pass
else
    fail "truncated request: exit $rc, stderr: $(cat "$TMP/err")"
fi
# An empty request decodes (all fields are optional) and is answered with
# an error protoc would print; the response decodes as protobuf.
"$GEN" </dev/null >"$TMP/resp" 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && "$PROTOC" --decode_raw <"$TMP/resp" | grep -q 'names no file to generate'; then
    pass
else
    fail "empty request: exit $rc, stderr: $(cat "$TMP/err")"
fi
# A real captured request gives a response with both files.
"$GEN" <$D/testdata/corpus/kv_request.bin >"$TMP/resp" 2>"$TMP/err"
if "$PROTOC" --decode_raw <"$TMP/resp" | grep -q '"codegen/protoc-gen-goplugin-c/testdata/kv.gp.c"'; then
    pass
else
    fail "captured request: $(cat "$TMP/err")"
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
