#!/usr/bin/env bash
# run.sh — build every libFuzzer target (tests/fuzz/*_fuzz.c) with clang
# (ASan + UBSan) and run each for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 30); 0 only replays the checked-in corpus
# and the regression inputs (tests/fuzz/corpus/<target>/,
# tests/fuzz/regressions/<target>/) once, as a quick regression test.
# The core is compiled once into $FUZZ_BUILD (default build-fuzz) with
# -fsanitize=fuzzer-no-link; each target links against that archive.
# Fuzzing starts from a scratch copy of the checked-in corpus, so the
# tree is never modified; a crash leaves its input in
# $FUZZ_BUILD/crashes/<target>/ and makes the script fail, naming it.
# Exit 77 when clang or libFuzzer is missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
secs=${1:-30}
shift || true
out=${FUZZ_BUILD:-$root/build-fuzz}
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# No -Werror here: clang warns about things gcc (the real build) does not.
CFLAGS="-O1 -g -std=c11 -D_GNU_SOURCE -Icore -Icore/protocol -Icore/driver -Icore/config $SAN $(pkg-config --cflags libsodium libzstd msgpack libssl libcrypto 2>/dev/null)"
LIBS="$(pkg-config --libs libsodium libzstd msgpack libssl libcrypto 2>/dev/null || echo -lsodium -lzstd -lmsgpackc -lssl -lcrypto) -lpthread -ldl"

if ! command -v "$CC" >/dev/null; then
	echo "SKIP: $CC not installed"; exit 77
fi
probe=$(mktemp -d)
echo 'int LLVMFuzzerTestOneInput(const unsigned char*d,unsigned long n){(void)d;(void)n;return 0;}' \
	>"$probe/p.c"
if ! "$CC" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	rm -rf "$probe"; echo "SKIP: $CC has no libFuzzer (libclang-rt-dev)"; exit 77
fi
rm -rf "$probe"

mkdir -p "$out/core" "$out/crashes"
# Core objects, rebuilt when a source or header is newer.
objs=()
newest_h=$(ls -t core/*.h core/*/*.h | head -1)
for src in core/*/*.c; do
	obj=$out/core/$(basename "${src%.c}").o
	objs+=("$obj")
	if [[ ! -f $obj || $src -nt $obj || $newest_h -nt $obj ]]; then
		echo "  CC      $src"
		$CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || exit 1
	fi
done
rm -f "$out/libcore.a"
ar rcs "$out/libcore.a" "${objs[@]}" || exit 1

if (($# > 0)); then
	targets=("$@")
else
	targets=()
	for f in tests/fuzz/*_fuzz.c; do targets+=("$(basename "${f%.c}")"); done
fi

# One target: build, then replay or fuzz.  Prints its verdict; exit 0 ok,
# 1 failed, 2 build failed.
run_target() {
	local t=$1 rc
	echo "  LD      $out/$t"
	$CC $CFLAGS -fsanitize=fuzzer "tests/fuzz/$t.c" "$out/libcore.a" $LIBS -o "$out/$t" || return 2
	local seeds=tests/fuzz/corpus/$t regress=tests/fuzz/regressions/$t dirs=()
	[[ -d $seeds ]] && dirs+=("$seeds")
	[[ -d $regress ]] && dirs+=("$regress")
	rm -rf "$out/crashes/$t"
	mkdir -p "$out/crashes/$t"
	local log=$out/$t.log
	if ((secs == 0)); then
		((${#dirs[@]})) || { echo "  skip    $t: no corpus"; return 0; }
		echo "  REPLAY  $t"
		"$out/$t" -runs=0 "${dirs[@]}" >"$log" 2>&1
	else
		local work=$out/corpus/$t d
		mkdir -p "$work"
		for d in "${dirs[@]}"; do cp -n "$d"/* "$work"/ 2>/dev/null; done
		echo "  FUZZ    $t ${secs}s"
		# Wall clock bound on top of libFuzzer's own (a hang counts).
		timeout $((secs + 120)) "$out/$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
			-max_len=4096 -print_final_stats=1 -artifact_prefix="$out/crashes/$t/" \
			"$work" >"$log" 2>&1
	fi
	rc=$?
	if ((rc != 0)); then
		echo "  FAIL    $t (exit $rc), log $log; inputs: $(ls "$out/crashes/$t" 2>/dev/null | tr '\n' ' ')"
		grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -8 | sed 's/^/          /'
		return 1
	fi
	echo "  ok      $t: $(grep -E '^stat::number_of_executed_units|Done [0-9]+ runs' "$log" | tail -1)"
}

# Targets run SRM_FUZZ_JOBS at a time (default: one per core); each
# libFuzzer run is single-threaded, so two cores halve the wall time of
# CI's 60 s per target.
jobs=${SRM_FUZZ_JOBS:-$(nproc)}
declare -A pid_of=()
failed=()
reap() { # wait for one running target; note it if it failed
	local done_pid t
	wait -n -p done_pid "${!pid_of[@]}" 2>/dev/null
	local rc=$?
	t=${pid_of[$done_pid]}
	unset "pid_of[$done_pid]"
	case $rc in 0) ;; 2) failed+=("$t (build)") ;; *) failed+=("$t") ;; esac
}
for t in "${targets[@]}"; do
	while ((${#pid_of[@]} >= jobs)); do reap; done
	run_target "$t" &
	pid_of[$!]=$t
done
while ((${#pid_of[@]})); do reap; done
if ((${#failed[@]})); then
	echo "fuzz: ${#failed[@]} of ${#targets[@]} failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets ok"
