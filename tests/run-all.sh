#!/usr/bin/env bash
# run-all.sh BUILD: every srmudp test, one compact report, one summary line.
#
#   1. BUILD/unit_tests (googletest): each test case counts on its own.
#   2. tests/integration/test_*.sh, in name order, one at a time (2 cores),
#      each under a timeout; each script counts as one.  Exit 0 = pass,
#      77 = skipped (the script prints why), anything else = fail.
#
# Every ok/FAIL/skip line ends with the item's wall time; the line before
# the last gives the total.  The last line is exactly "N passed, N failed"
# (", N skipped" if any), which CI reads; the exit status is non-zero if
# anything failed.  Full logs stay in BUILD/test-logs/; a failure prints the
# tail of its log.  docs/TESTING.md describes all of this; keep them equal.
#
# Environment:
#   SRM_TESTS         only integration scripts whose name contains one of
#                     these words (space separated), e.g. SRM_TESTS="lab shim"
#   SRM_UNIT_FILTER   passed to --gtest_filter
#   SRM_TEST_TIMEOUT  seconds per integration script (default 1200)
#   SRM_UNIT_TIMEOUT  seconds for the whole unit test binary (default 300)
#   SRM_SKIP_UNIT=1   integration scripts only
set -uo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" # root; BUILD from the argument (default build)
srm_build "${1:-build}"
build=$BUILD
logs="$build/test-logs"
# A hang guard, not a budget: test_fuzz fuzzes 8 targets for 60 s each.
timeout_s=${SRM_TEST_TIMEOUT:-1200}
unit_timeout_s=${SRM_UNIT_TIMEOUT:-300}
tail_lines=40
passed=0 failed=0 skipped=0
t_all=$SECONDS

mkdir -p "$logs"
# Tests find the build (and the lab's impairment stage) through these.
export SRM_BUILD="$build" SRM_ROOT="$root"

show_tail() { tail -n "$tail_lines" "$1" | sed 's/^/      | /'; }

# --- unit tests ------------------------------------------------------------
run_unit() {
	local bin="$build/unit_tests" log="$logs/unit_tests.log" t0=$SECONDS rc p f s
	if [[ ! -x $bin ]]; then
		echo "FAIL  unit_tests: $bin is not built"
		failed=$((failed + 1))
		return
	fi
	# Full output to the log (not --gtest_brief): if a test hangs, the
	# tail names it with its "[ RUN      ]" line.
	timeout --kill-after=10 "$unit_timeout_s" "$bin" \
		${SRM_UNIT_FILTER:+--gtest_filter="$SRM_UNIT_FILTER"} >"$log" 2>&1
	rc=$?
	# gtest's closing lines: "[  PASSED  ] 12 tests.", "[  FAILED  ] 2 tests,
	# listed below:", "[  SKIPPED ] 1 test, listed below:".
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$log" | tail -n1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below:.*/\1/p' "$log" | tail -n1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below:.*/\1/p' "$log" | tail -n1)
	p=${p:-0} f=${f:-0} s=${s:-0}
	if ! grep -q '^\[==========\] .* ran\.' "$log"; then
		# Crashed, aborted or hung before its summary: count the cases
		# that finished, plus one failure for the one that never did
		# (the log's tail names it with its "[ RUN      ]" line).
		p=$(grep -c '^\[       OK \] ' "$log")
		f=$(grep -cE '^\[  FAILED  \] [A-Za-z_].* \([0-9]+ ms\)$' "$log")
		[[ $rc == 124 ]] && rc="timed out after $unit_timeout_s s" || rc="exit $rc"
		echo "FAIL  unit_tests: stopped before its summary ($rc, $((SECONDS - t0)) s;" \
			"$p passed, $f failed before that)"
		show_tail "$log"
		passed=$((passed + p)) failed=$((failed + f + 1))
		return
	fi
	if ((rc != 0 && f == 0)); then
		f=1 # e.g. a leak reported after the summary
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if ((f)); then
		echo "FAIL  unit_tests: $p passed, $f failed ($((SECONDS - t0)) s)"
		# The failed names, from gtest's closing list, then the log's tail.
		sed -n '/^\[  FAILED  \] [0-9]* tests\{0,1\}, listed below:/,$p' "$log" |
			grep -E '^\[  FAILED  \] [A-Za-z_]' | sed 's/^/      /'
		show_tail "$log"
	else
		local extra=""
		((s)) && extra=", $s skipped"
		echo "ok    unit_tests: $p passed$extra ($((SECONDS - t0)) s)"
	fi
}

# --- integration scripts ---------------------------------------------------
selected() {
	local name=$1 w
	[[ -z ${SRM_TESTS:-} ]] && return 0
	for w in $SRM_TESTS; do [[ $name == *"$w"* ]] && return 0; done
	return 1
}

run_script() {
	local script=$1 name log t0=$SECONDS rc why
	name=$(basename "$script" .sh)
	log="$logs/$name.log"
	# On expiry timeout sends TERM to its whole process group: the script
	# (whose EXIT trap still runs, e.g. lab_down) and everything it started.
	timeout --kill-after=30 "$timeout_s" bash "$script" >"$log" 2>&1 </dev/null
	rc=$?
	case $rc in
	0)
		echo "ok    $name ($((SECONDS - t0)) s)"
		passed=$((passed + 1))
		;;
	77)
		why=$(grep -m1 -i 'skip' "$log" || tail -n1 "$log")
		echo "skip  $name: ${why:-no reason given} ($((SECONDS - t0)) s)"
		skipped=$((skipped + 1))
		;;
	*)
		[[ $rc == 124 ]] && why="timed out after $timeout_s s" || why="exit $rc"
		echo "FAIL  $name ($why, $((SECONDS - t0)) s)"
		show_tail "$log"
		failed=$((failed + 1))
		;;
	esac
}

[[ ${SRM_SKIP_UNIT:-0} == 1 ]] || run_unit
shopt -s nullglob
for script in "$root"/tests/integration/test_*.sh; do
	selected "$(basename "$script")" && run_script "$script"
done

t_all=$((SECONDS - t_all))
echo "total time: $t_all s ($((t_all / 60)) min $((t_all % 60)) s)"
summary="$passed passed, $failed failed"
((skipped)) && summary+=", $skipped skipped"
echo "$summary"
((failed == 0))
