#!/bin/sh
# merge_archives.sh OUT.a IN.a...: one archive with every member of the
# inputs. Members are renamed <n>-<name>.o, so two libraries' util.o do not
# overwrite each other.
set -eu
out=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for a in "$@"; do
  n=$((n + 1))
  mkdir "$tmp/$n"
  abs=$(cd "$(dirname "$a")" && pwd)/$(basename "$a")
  (cd "$tmp/$n" && ar x "$abs")
  for o in "$tmp/$n"/*; do
    [ -e "$o" ] || continue
    mv "$o" "$tmp/m$n-$(basename "$o")"
  done
done
rm -f "$out"
# D: deterministic (no timestamps, uids), so the same tree gives the same file.
ar rcsD "$out" "$tmp"/m*
