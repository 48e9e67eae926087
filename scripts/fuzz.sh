#!/usr/bin/env bash
# Builds every gp_fuzz_target with clang libFuzzer (--config=fuzz) and runs
# each for FUZZ_SECONDS from a scratch copy of its committed seed corpus
# (the committed testdata is never written). Crash inputs are kept under
# the scratch dir and listed. Ends with "fuzz: N targets, M crashes";
# exits non-zero when anything crashed or failed to build.
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_JOBS     targets run at once (default 2: the machine's cores)
#   FUZZ_TARGETS  space-separated labels to run instead of all of them
#   FUZZ_OUT      scratch dir (default: a new mktemp dir, kept when
#                 something crashed, removed otherwise)
#
# Per target it prints "fuzz: PASS //label" or "fuzz: CRASH //label ..."
# (scripts/test.sh counts those lines), then a coverage table: libFuzzer's
# final "cov:" (edges) and "ft:" (features) per target, and how many
# functions the run reached in all, in nanopb's runtime and in jansson (both
# compiled from source with the same instrumentation: bazel/*.BUILD).
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
own_out=0
if [ -z "${FUZZ_OUT:-}" ]; then
  FUZZ_OUT=$(mktemp -d "${TMPDIR:-/tmp}/gp-fuzz.XXXXXX")
  own_out=1
fi
mkdir -p "$FUZZ_OUT"

if [ -n "${FUZZ_TARGETS:-}" ]; then
  targets=($FUZZ_TARGETS)
else
  mapfile -t targets < <("$BAZEL" query --noshow_progress \
    'kind(cc_binary, attr(generator_function, gp_fuzz_target, //...))' 2>/dev/null | sort)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: no gp_fuzz_target found" >&2
  echo "fuzz: 0 targets, 0 crashes"
  exit 1
fi

echo "== bazel build --config=fuzz (${#targets[@]} targets)" >&2
# --symlink_prefix=/: leave bazel-bin pointing at the normal build.
if ! "$BAZEL" build --config=fuzz --symlink_prefix=/ --jobs=2 "${targets[@]}" \
    >"$FUZZ_OUT/build.log" 2>&1; then
  grep -E 'ERROR|error:' "$FUZZ_OUT/build.log" | head -20 >&2
  for t in "${targets[@]}"; do echo "fuzz: CRASH $t (build failed)"; done
  echo "fuzz: ${#targets[@]} targets, ${#targets[@]} crashes"
  echo "fuzz: build log kept in $FUZZ_OUT/build.log" >&2
  exit 1
fi
bin=$("$BAZEL" info --config=fuzz bazel-bin 2>/dev/null)

# //pkg:name -> pkg/name
label_path() { local l=${1#//}; echo "${l%%:*}/${l#*:}"; }

# Runs one target; writes its verdict to $dir/verdict.
run_one() {
  local t=$1 name dir exe
  name=$(echo "${t#//}" | tr '/:' '__')
  dir=$FUZZ_OUT/$name
  exe=$bin/$(label_path "$t")
  # halt_on_error: the fuzz build compiles UBSan checks as recoverable.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    timeout -k 10 $((SECONDS_EACH + 120)) "$exe" \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -print_coverage=1 -artifact_prefix="$dir/crashes/" \
      "$dir/corpus" >"$dir/log" 2>&1
  local rc=$?
  local n
  n=$(find "$dir/crashes" -type f | wc -l)
  if [ "$rc" -eq 0 ] && [ "$n" -eq 0 ]; then
    echo "PASS $(find "$dir/corpus" -type f | wc -l)" >"$dir/verdict"
  else
    [ "$n" -eq 0 ] && n=1 # died without leaving an input (e.g. the timeout above)
    echo "CRASH $n $rc" >"$dir/verdict"
  fi
}

# Seeds, copied before any fuzzer runs (bazel query takes the server lock):
# the files of the corpus filegroup each target's _corpus_test replays.
for t in "${targets[@]}"; do
  dir=$FUZZ_OUT/$(echo "${t#//}" | tr '/:' '__')
  mkdir -p "$dir/corpus" "$dir/crashes"
  for s in $("$BAZEL" query --noshow_progress \
      "labels(srcs, labels(data, ${t}_corpus_test) except $t)" 2>/dev/null); do
    f=$(label_path "$s")
    [ -f "$f" ] && cp "$f" "$dir/corpus/seed_$(basename "$f")"
  done
done

echo "== fuzzing ${#targets[@]} targets, ${SECONDS_EACH}s each, $JOBS at a time; scratch $FUZZ_OUT" >&2
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

# The third-party sources' file names (print_coverage names files without
# their directory), less any name our own tree also has.
mapfile -t nanopb_files < <(cd .cache/debian-src/nanopb 2>/dev/null && ls pb_*.c)
mapfile -t jansson_files < <(cd .cache/debian-src/jansson/src 2>/dev/null && ls ./*.c | sed 's|^\./||')
ours=$(git ls-files '*.c' 2>/dev/null | sed 's|.*/||' | sort -u)
# covered_funcs LOG FILE...: functions of those files the run reached.
covered_funcs() {
  local log=$1
  shift
  [ $# -eq 0 ] && { echo 0; return; }
  grep '^COVERED_FUNC:' "$log" | awk '{print $NF}' | sed 's/:[0-9]*$//' |
    grep -cxFf <(printf '%s\n' "$@" | grep -vxFf <(echo "$ours")) || true
}

crashes=0
for t in "${targets[@]}"; do
  name=$(echo "${t#//}" | tr '/:' '__')
  dir=$FUZZ_OUT/$name
  read -r verdict count rc <"$dir/verdict" 2>/dev/null || { verdict=CRASH; count=1; rc=?; }
  if [ "$verdict" = PASS ]; then
    echo "fuzz: PASS $t (corpus now $count inputs)"
  else
    crashes=$((crashes + count))
    echo "fuzz: CRASH $t (exit $rc; log $dir/log)"
    find "$dir/crashes" -type f | sed 's/^/fuzz:   input /'
    grep -m3 -E 'ERROR: |runtime error|SUMMARY' "$dir/log" | sed 's/^/fuzz:   /' >&2
  fi
done

printf 'fuzz: coverage after %ss each (libFuzzer final cov/ft; functions reached: all, nanopb, jansson)\n' "$SECONDS_EACH"
printf 'fuzz: %-50s %6s %7s %6s %6s %7s\n' target cov ft funcs nanopb jansson
for t in "${targets[@]}"; do
  log=$FUZZ_OUT/$(echo "${t#//}" | tr '/:' '__')/log
  last=$(grep -E ' cov: [0-9]+ ft: [0-9]+' "$log" 2>/dev/null | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  all=$(grep -c '^COVERED_FUNC:' "$log" 2>/dev/null)
  printf 'fuzz: %-50s %6s %7s %6s %6s %7s\n' "$t" "${cov:--}" "${ft:--}" "${all:-0}" \
    "$(covered_funcs "$log" "${nanopb_files[@]}")" "$(covered_funcs "$log" "${jansson_files[@]}")"
done

echo "fuzz: ${#targets[@]} targets, $crashes crashes"
if [ "$crashes" -eq 0 ] && [ "$own_out" -eq 1 ]; then
  rm -rf "$FUZZ_OUT"
elif [ "$crashes" -ne 0 ]; then
  echo "fuzz: crash inputs and logs kept in $FUZZ_OUT" >&2
fi
[ "$crashes" -eq 0 ]
