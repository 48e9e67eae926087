#!/usr/bin/env bash
# Regenerates bazel/grpc_hot_code.txt: the functions a gRPC plugin and host
# run (start, plain and AutoMTLS calls, shutdown), as recorded by callgrind.
# An -c opt link with lld puts them first (--symbol-ordering-file), so the
# code they touch sits in fewer pages; the kernel maps a binary's text 64 KiB
# around each fault, so scattered hot code costs resident memory
# (docs/grpc.md, "Footprint"). The example plugin links static, so libc's
# functions are in the list too (scripts/hot_code_list.py). Run it after a
# Debian gRPC or glibc upgrade.
#
#   scripts/grpc_hot_code.sh        (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bazel build -c opt //examples/kv:kv-host //examples/kv:kv-plugin >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/gp-hot.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$bin/examples/kv/kv-plugin" "$bin/examples/kv/kv-host" "$work/"
cat >"$work/plugin.sh" <<EOF
#!/bin/sh
exec valgrind -q --tool=callgrind --demangle=no --callgrind-out-file=$work/cg.%p.out $work/kv-plugin "\$@"
EOF
chmod +x "$work/plugin.sh"
vg=(valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.%p.out")
for tls in "" --automtls; do
  "${vg[@]}" "$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto grpc $tls \
    bench --mode latency -n 300 >/dev/null
  "${vg[@]}" "$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto grpc $tls \
    bench --mode throughput -n 400 -c 4 >/dev/null
done
# Every function named in the profiles, with each IFUNC variant's siblings.
python3 scripts/hot_code_list.py "$work" "$work/kv-plugin" >bazel/grpc_hot_code.txt
echo "bazel/grpc_hot_code.txt: $(wc -l <bazel/grpc_hot_code.txt) functions" >&2
