#!/usr/bin/env bash
# Regenerates bazel/netrpc_hot_code.txt: the functions the netrpc-only KV
# plugin (//examples/kv:kv-plugin-netrpc, linked static) runs from exec to
# its calls (start and plain calls), as recorded by callgrind. AutoMTLS runs
# are left out on purpose: their mbedTLS code, listed too, spread the
# plain path over more windows (1.34 MiB peak against 1.15-1.2). Its link
# with lld puts them first (bazel/static_link.bzl), so the code it touches
# sits in fewer of the kernel's 64 KiB fault-around windows (docs/netrpc.md,
# "Start and footprint"). The list is made by scripts/hot_code_list.py.
# Run it after a glibc or mbedTLS upgrade.
#
#   scripts/netrpc_hot_code.sh        (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bazel build -c opt //examples/kv:kv-host //examples/kv:kv-plugin-netrpc >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/gp-hot.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$bin/examples/kv/kv-plugin-netrpc" "$bin/examples/kv/kv-host" "$work/"
cat >"$work/plugin.sh" <<EOS
#!/bin/sh
exec valgrind -q --tool=callgrind --demangle=no --callgrind-out-file=$work/cg.%p.out $work/kv-plugin-netrpc "\$@"
EOS
chmod +x "$work/plugin.sh"
"$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto netrpc \
  bench --mode startup -n 2 >/dev/null
"$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto netrpc \
  bench --mode latency -n 300 >/dev/null
# Every function named in the profiles, with each IFUNC variant's siblings.
python3 scripts/hot_code_list.py "$work" "$work/kv-plugin-netrpc" >bazel/netrpc_hot_code.txt
echo "bazel/netrpc_hot_code.txt: $(wc -l <bazel/netrpc_hot_code.txt) functions" >&2
