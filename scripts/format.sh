#!/usr/bin/env bash
# The project's C style is .clang-format at the root. `scripts/format.sh`
# formats every C file in place; `scripts/format.sh --check` changes nothing
# and exits 1, naming the files, when any file is not formatted.
# Left out: generated goldens and seed corpora (testdata/), and
# packaging/test/project (docs/using.md shows those files byte for byte).
set -euo pipefail
# From the source tree, also when Bazel runs this through a symlink.
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (scripts/deps.sh)"; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null | grep -v -e 'testdata/' -e '^packaging/' || true)
if [ ${#files[@]} -eq 0 ]; then
  # Not a git checkout (an unpacked archive): every C file below.
  mapfile -t files < <(find . -path ./packaging -prune -o -path '*/testdata' -prune -o \
    -path './bazel-*' -prune -o -path ./.cache -prune -o \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||')
fi
if [ "${1:-}" = --check ]; then
  if ! out=$(clang-format --style=file --dry-run -Werror "${files[@]}" 2>&1); then
    echo "format: not formatted (run scripts/format.sh):"
    grep -oE '^[^:]+\.[ch]:[0-9]+' <<<"$out" | sort -u -t: -k1,1 | sed 's/^/  /'
    exit 1
  fi
  echo "format: ok (${#files[@]} files)"
else
  clang-format --style=file -i "${files[@]}"
fi
