#!/usr/bin/env bash
# test_fuzz.sh — every libFuzzer target (tests/fuzz/*_fuzz.c) for a
# bounded time, after replaying its checked-in corpus and regression
# inputs (tests/fuzz/regressions/<target>/: each crash ever found).
#
#   SRM_FUZZ_SECONDS  seconds per target (default 60; CI's minimum)
# Skips (77) without clang/libFuzzer.  Takes about SECONDS x 11 targets / cores, plus
# 2 minutes of builds, inside tests/run-all.sh's default 1200 s per script.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
secs=${SRM_FUZZ_SECONDS:-60}
export FUZZ_BUILD=$BUILD-fuzz
[[ $FUZZ_BUILD == */build-fuzz ]] || FUZZ_BUILD=$root/build-fuzz
"$root/tests/fuzz/run.sh" 0
replay=$?
((replay == 77)) && exit 77
if ((replay == 0)); then
	ok "corpus and regression inputs replay cleanly"
else
	fail "a checked-in corpus or regression input crashes (see above)"
fi
"$root/tests/fuzz/run.sh" "$secs"
check "every target fuzzed ${secs}s without a finding" test $? -eq 0
srm_finish
