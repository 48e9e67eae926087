#!/usr/bin/env bash
# make soak: builds //soak:soak and the C KV plugin, then runs the soak
# (soak/soak.c) for SOAK_SECONDS (default 600). SOAK_BAZEL_FLAGS adds Bazel
# flags, e.g. SOAK_BAZEL_FLAGS=--config=asan for a sanitizer run. Exit
# status: the soak's (non-zero on any violation).
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=${BAZEL:-bazel}
read -r -a flags <<<"${SOAK_BAZEL_FLAGS:-}"
"$BAZEL" build "${flags[@]}" --jobs=2 //soak:soak //examples/kv:kv-plugin >&2
bin=$("$BAZEL" info "${flags[@]}" bazel-bin 2>/dev/null)
exec "$bin/soak/soak" --plugin "$bin/examples/kv/kv-plugin" --seconds "${SOAK_SECONDS:-600}"
