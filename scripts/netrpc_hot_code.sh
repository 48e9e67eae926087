#!/usr/bin/env bash
# Regenerates bazel/netrpc_hot_code.txt: the functions the netrpc-only KV
# plugin (//examples/kv:kv-plugin-netrpc, linked static) runs from exec to
# its calls (start, plain and AutoMTLS calls), as recorded by callgrind, in
# the order first seen. Its -c opt link with lld puts them first
# (bazel/static_link.bzl), so the code it touches sits in fewer of the
# kernel's 64 KiB fault-around windows (docs/netrpc.md, "Start and
# footprint"). libc's string functions appear under the variant this CPU
# picks (__memcpy_avx_unaligned_erms...); on another CPU the others are
# merely not ordered. Run it after a glibc or mbedTLS upgrade.
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
for tls in "" --automtls; do
  "$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto netrpc $tls \
    bench --mode startup -n 2 >/dev/null
  "$work/kv-host" --plugin "$work/plugin.sh" --start-timeout 120 --proto netrpc $tls \
    bench --mode latency -n 300 >/dev/null
done
# Every function named in the profiles (fn= and cfn= lines), first seen
# first; the files in the order the runs wrote them (plain first).
python3 - "$work" >bazel/netrpc_hot_code.txt <<'EOS'
import glob, os, re, sys
seen, out = set(), []
for f in sorted(glob.glob(sys.argv[1] + "/cg.*.out"), key=os.path.getmtime):
    for line in open(f, errors="replace"):
        m = re.match(r"c?fn=\(\d+\) (\S+)", line)
        if m:
            name = m.group(1).split("'")[0]
            if not name.startswith("0x") and name not in seen:
                seen.add(name)
                out.append(name)
print("\n".join(out))
EOS
echo "bazel/netrpc_hot_code.txt: $(wc -l <bazel/netrpc_hot_code.txt) functions" >&2
