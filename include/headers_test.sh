#!/bin/sh
# Every installed header compiles on its own (twice, for the include guard)
# as C11 and as C++17 with -Wall -Wextra -Werror -pedantic, using cc and
# c++ from PATH; no header is over 250 lines; goplugin.h includes them all.
set -u
cd "${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-.}" 2>/dev/null || true
dir=include/goplugin
[ -d "$dir" ] || { echo "no $dir under $(pwd)"; exit 1; }
tmp=${TEST_TMPDIR:-/tmp}/headers_test.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for h in "$dir"/*.h; do
    name=$(basename "$h")
    n=$((n + 1))
    printf '#include <goplugin/%s>\n#include <goplugin/%s>\nint gp_headers_test_;\n' \
        "$name" "$name" > "$tmp/t.c"
    cp "$tmp/t.c" "$tmp/t.cc"
    if ! cc -std=c11 -Wall -Wextra -Werror -pedantic -I include -fsyntax-only \
            "$tmp/t.c" > "$tmp/out" 2>&1; then
        echo "FAIL $name as C11:"; cat "$tmp/out"; fail=1
    fi
    if ! c++ -std=c++17 -Wall -Wextra -Werror -pedantic -I include -fsyntax-only \
            "$tmp/t.cc" > "$tmp/out" 2>&1; then
        echo "FAIL $name as C++17:"; cat "$tmp/out"; fail=1
    fi
    lines=$(wc -l < "$h")
    if [ "$lines" -gt 250 ]; then
        echo "FAIL $name has $lines lines; at most 250 (split it by concern)"; fail=1
    fi
    if [ "$name" != goplugin.h ] &&
            ! grep -q "^#include <goplugin/$name>" "$dir/goplugin.h"; then
        echo "FAIL goplugin.h does not include $name"; fail=1
    fi
done
if [ "$n" -lt 10 ]; then
    echo "FAIL only $n headers found in $dir"; fail=1
fi
[ "$fail" = 0 ] && echo "ok: $n headers, C11 and C++17, each <= 250 lines"
exit "$fail"
