#!/usr/bin/env python3
"""Prints the functions named in callgrind profiles, for an lld
--symbol-ordering-file (scripts/grpc_hot_code.sh, scripts/netrpc_hot_code.sh).

    hot_code_list.py DIR BINARY

Reads DIR/cg.*.out in the order they were written; each function once, first
seen first (fn= and cfn= lines). libc picks its string functions by CPU at
start (IFUNC) and valgrind's CPU has no AVX-512: beside each variant a
profile names (__strlen_avx2) the list names its siblings in BINARY
(__strlen_evex, ...), so the one a real CPU picks is among the hot code too.
"""
import glob
import os
import re
import subprocess
import sys

work, binary = sys.argv[1], sys.argv[2]
syms = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
in_binary = sorted({l.split()[-1] for l in syms.splitlines() if len(l.split()) == 3})
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
