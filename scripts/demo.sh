#!/usr/bin/env bash
# make demo: the C KV host drives the C KV plugin over gRPC.
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=${BAZEL:-bazel}

"$BAZEL" build //examples/kv:kv-host //examples/kv:kv-plugin 2>&1 | grep -E "^(ERROR|FAILED)" >&2 || true
host=bazel-bin/examples/kv/kv-host
plugin=bazel-bin/examples/kv/kv-plugin
[ -x "$host" ] && [ -x "$plugin" ] || { echo "demo: build failed" >&2; exit 1; }

run() {
  echo "\$ kv-host --plugin kv-plugin $*"
  # The plugin logs every put and get at debug; the host shows plugin log
  # lines on stderr at their level.
  KV_PLUGIN_LOG_LEVEL=debug KV_HOST_LOG_LEVEL=debug "$host" --plugin "$plugin" "$@" 2>&1
  echo
}

run put hello world put answer 42 get hello get answer get never-put
echo "# a plugin session per kv-host run: the store starts empty again"
run get hello
