#!/usr/bin/env bash
# test_fuzz.sh — every libFuzzer target (tests/fuzz/*_fuzz.c) for a
# bounded time, after replaying its checked-in corpus and regression
# inputs (tests/fuzz/regressions/<target>/: each crash ever found).
#
#   SRM_FUZZ_SECONDS  seconds per target (default 60; CI's minimum)
# Skips (77) without clang/libFuzzer.  About SECONDS x targets + builds.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${SRM_FUZZ_SECONDS:-60}
export FUZZ_BUILD=${SRM_BUILD:-$root/build}-fuzz
[[ $FUZZ_BUILD == */build-fuzz ]] || FUZZ_BUILD=$root/build-fuzz
"$root/tests/fuzz/run.sh" 0
rc=$?
((rc == 77)) && exit 77
((rc == 0)) || { echo "FAIL: a checked-in corpus or regression input crashes"; exit 1; }
echo "  ok    corpus and regression inputs replay cleanly"
"$root/tests/fuzz/run.sh" "$secs"
rc=$?
((rc == 0)) && echo "  ok    every target fuzzed ${secs}s without a finding"
exit $rc
