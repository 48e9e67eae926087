#!/usr/bin/env bash
# Regenerates bazel/netrpc_hot_code.txt: the functions the netrpc-only KV
# plugin (//examples/kv:kv-plugin-netrpc, linked static) runs from exec to
# its calls (start and plain calls), as recorded by callgrind. AutoMTLS runs
# are left out on purpose: their mbedTLS code, listed too, spread the
# plain path over more windows (1.34 MiB peak against 1.15-1.2). Its link
# with lld puts them first (bazel/static_link.bzl), so the code it touches
# sits in fewer of the kernel's 64 KiB fault-around windows (docs/netrpc.md,
# "Start and footprint"). libc picks its string functions by CPU at start
# (IFUNC), and valgrind's CPU has no AVX-512: beside each variant callgrind
# saw (__strlen_avx2) the list names its siblings in the binary
# (__strlen_evex, ...), so the one a real CPU picks is among the hot code
# too. Run it after a glibc or mbedTLS upgrade.
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
# Every function named in the profiles (fn= and cfn= lines), the files in
# the order they were written.
nm "$work/kv-plugin-netrpc" >"$work/syms"
python3 - "$work" >bazel/netrpc_hot_code.txt <<'EOS'
import glob, os, re, sys
work = sys.argv[1]
in_binary = sorted({l.split()[-1] for l in open(work + "/syms") if len(l.split()) == 3})
variant = re.compile(r"^(__[a-z0-9]+?)_(sse2|sse4_1|sse4_2|sse42|ssse3|avx2|avx512|avx|evex|erms)")
seen, out = set(), []
def add(name):
    if name not in seen:
        seen.add(name)
        out.append(name)
for f in sorted(glob.glob(work + "/cg.*.out"), key=os.path.getmtime):
    for line in open(f, errors="replace"):
        m = re.match(r"c?fn=\(\d+\) (\S+)", line)
        if not m or m.group(1).startswith("0x"):
            continue
        name = m.group(1).split("'")[0]
        add(name)
        v = variant.match(name)
        if v:
            for sib in in_binary:
                if sib.startswith(v.group(1) + "_") and variant.match(sib):
                    add(sib)
print("\n".join(out))
EOS
echo "bazel/netrpc_hot_code.txt: $(wc -l <bazel/netrpc_hot_code.txt) functions" >&2
