#!/bin/sh
# Replays a fuzz target's seed corpus: run_corpus.sh TARGET FILE...
set -e
exec "$@"
