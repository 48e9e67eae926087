#!/bin/sh
# The harness against harness_victim: a hanging case is named, killed with
# its leftovers at its 1 s deadline; a crash names its signal; a failed
# gp_err check names the codes; a filter that matches nothing fails.
victim="$1"
out="$TEST_TMPDIR/out"
fail=0
bad() { echo "FAIL: $*"; cat "$out"; fail=1; }

start=$(date +%s%N)
GP_TEST_SCALE=1 GP_TEST_FILTER=sleeps_forever "$victim" >"$out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -ne 0 ] || bad "a hanging case exited 0"
grep -q "^TIMEOUT sleeps_forever after 1 s" "$out" || bad "no TIMEOUT line naming the case"
grep -q "^0 passed, 1 failed" "$out" || bad "the hanging case is not counted as failed"
[ "$ms" -lt 2500 ] || bad "took $ms ms for a 1 s deadline"
for f in own_group.pid case_group.pid; do
    pid=$(cat "$TEST_TMPDIR/$f" 2>/dev/null)
    if [ -z "$pid" ]; then bad "the case did not write $f"; continue; fi
    # Gone or at most a zombie of someone else's for a moment.
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
    [ -z "$state" ] || [ "$state" = Z ] || bad "process $pid ($f) survived the timeout"
done

GP_TEST_SCALE=2 GP_TEST_FILTER=sleeps_forever "$victim" >"$out" 2>&1
[ $? -ne 0 ] || bad "a hanging case exited 0 (GP_TEST_SCALE=2)"
grep -q "^TIMEOUT sleeps_forever after 2 s" "$out" || bad "GP_TEST_SCALE=2 did not double the deadline"

GP_TEST_FILTER==crashes "$victim" >"$out" 2>&1 && bad "a crashing case exited 0"
grep -q "^CRASH crashes: killed by signal 6" "$out" || bad "no CRASH line with the signal"

GP_TEST_FILTER=named_error "$victim" >"$out" 2>&1 && bad "a failing case exited 0"
grep -q "expected rc == GP_OK, got GP_ETIMEDOUT (timed out)" "$out" || bad "the check did not name the codes"

GP_TEST_FILTER=passes "$victim" >"$out" 2>&1 || bad "a passing case failed"
grep -q "^1 passed, 0 failed" "$out" || bad "the passing case was not counted"

GP_TEST_NOFORK=1 GP_TEST_FILTER=passes "$victim" >"$out" 2>&1 || bad "NOFORK: a passing case failed"

GP_TEST_FILTER=no_such_case "$victim" >"$out" 2>&1 && bad "a filter matching nothing exited 0"

VICTIM_THREAD_IN_MAIN=1 GP_TEST_FILTER=passes "$victim" >"$out" 2>&1 && bad "a thread in the harness process went unnoticed"
grep -q "harness process has [0-9]* threads before forking" "$out" || bad "no word about the thread in main"

"$victim" --gp-helper nobody >"$out" 2>&1
[ $? -eq 2 ] || bad "an unknown helper did not exit 2"

[ $fail -eq 0 ] && echo "harness_timeout_test: all good"
exit $fail
