#!/usr/bin/env bash
# Runs one interop test that needs go-plugin 1.8 peers, or reports it as
# skipped when they could not be built (../shared/peers/go-plugin-1.8 absent,
# see bazel/go_plugin_18.bzl):
#
#   run_or_skip.sh STATE_FILE SCRIPT ARGS...
#
# A skip prints one line starting "GP_TEST_SKIPPED:" and exits 0;
# scripts/test.sh finds that line in the test's log and counts the target
# as skipped, not passed. Anything else runs SCRIPT (a shell script, or any
# executable, e.g. a C test) with ARGS and keeps its exit status.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 STATE_FILE SCRIPT ARGS..." >&2
  exit 2
fi
state=$1 script=$2
shift 2
if [ ! -f "$state" ]; then
  echo "FAIL: expected the go-plugin 1.8 state file at $state, got none"
  exit 1
fi
case $(head -n 1 "$state") in
ok)
  case $script in
  *.sh) exec bash "$script" "$@" ;;
  *) exec "$script" "$@" ;;
  esac
  ;;
absent)
  echo "GP_TEST_SKIPPED: $(sed -n 2p "$state")"
  exit 0
  ;;
*)
  echo "FAIL: unknown go-plugin 1.8 state: $(head -c 200 "$state")"
  exit 1
  ;;
esac
