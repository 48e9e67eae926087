#!/usr/bin/env bash
# kv-host --sha256 (go-plugin's SecureConfig) with an ELF plugin and a `#!`
# script plugin: the right digest runs, another is refused with words naming
# both checksums, and nothing is started.
# Usage: sha256_test.sh KV_HOST KV_PLUGIN
set -uo pipefail
host=$1 plugin=$(realpath "$2")
fails=0 passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, then the command's success
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); echo "ok   $1"; else fails=$((fails + 1)); echo "FAIL $1"; fi
}
expect_eq() { # name expected actual
  if [ "$2" == "$3" ]; then check "$1" 0; else echo "  expected: $(printf %q "$2")"; echo "  got:      $(printf %q "$3")"; check "$1" 1; fi
}
expect_contains() { # name haystack needle
  case "$2" in *"$3"*) check "$1" 0 ;; *) echo "  expected to contain: $3"; echo "  got: $2"; check "$1" 1 ;; esac
}

wrong=0000000000000000000000000000000000000000000000000000000000000000

# A script plugin: the interpreter gets the sealed copy as /dev/fd/N.
script=$tmp/kv-plugin.sh
printf '#!/bin/sh\n# touched: %s\nexec "%s" "$@"\n' "$$" "$plugin" >"$script"
chmod +x "$script"

for p in "$plugin" "$script"; do
  kind=elf
  [ "$p" = "$script" ] && kind=script
  sum=$(sha256sum "$p" | cut -d' ' -f1)
  for proto in grpc netrpc; do
    out=$("$host" --plugin "$p" --proto "$proto" --sha256 "$sum" put a 1 get a 2>"$tmp/err")
    rc=$?
    expect_eq "$kind/$proto: right digest runs (exit 0)" 0 "$rc"
    expect_eq "$kind/$proto: right digest runs (output)" "1" "$out"
    [ "$rc" -eq 0 ] || cat "$tmp/err"
  done
  upper=$(printf %s "$sum" | tr a-f A-F)
  out=$("$host" --plugin "$p" --sha256 "$upper" get a 2>"$tmp/err")
  expect_eq "$kind: upper-case digest runs too" "0" "$?"
  out=$("$host" --plugin "$p" --sha256 "$wrong" put a 1 2>"$tmp/err")
  rc=$?
  expect_eq "$kind: wrong digest refused (exit 1)" 1 "$rc"
  expect_eq "$kind: nothing printed" "" "$out"
  expect_contains "$kind: words name both checksums" "$(cat "$tmp/err")" \
    "checksums did not match: expected $wrong, binary has $sum"
done

# Changed after its digest was taken: refused.
good=$(sha256sum "$script" | cut -d' ' -f1)
printf '# one more line\n' >>"$script"
out=$("$host" --plugin "$script" --sha256 "$good" get a 2>"$tmp/err")
expect_eq "script changed since its digest: refused" 1 "$?"
expect_contains "script changed since its digest: words" "$(cat "$tmp/err")" "checksums did not match"

out=$("$host" --plugin "$plugin" --sha256 abc get a 2>"$tmp/err")
expect_eq "bad --sha256: exit 1" 1 "$?"
expect_contains "bad --sha256: words" "$(cat "$tmp/err")" 'bad --sha256 "abc" (expected 64 hex digits)'
out=$("$host" --help 2>&1)
expect_contains "usage names --sha256" "$out" "--sha256 HEX"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
