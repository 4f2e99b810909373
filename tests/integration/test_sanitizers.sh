#!/usr/bin/env bash
# test_sanitizers.sh — the tree under the sanitizers and valgrind
# (docs/SECURITY.md section 7), each part bounded; loopback only.
#
#   asan      build-san-asan: the whole tree with ASan + UBSan (the preload and
#             CLI too); the unit tests; then a transfer
#             between two unmodified programs (socat) through the ASan
#             preload (libasan first in LD_PRELOAD), any report fails
#   tsan      build-san-tsan: the engine's threads under TSan (unit tests
#             Engine*, which run the real engine thread against callers)
#   valgrind  memcheck on a full transfer with the native API (srm-echo
#             serve / send): zero errors, zero definite leaks
#
#   SRM_SAN_PARTS="asan tsan valgrind"   which parts (default all)
# Own build directories (build-san-asan, build-san-tsan): `make asan` passes
# CFLAGS on the command line, which drops -fPIC, so its objects cannot go
# into the preload; sharing build-asan with it would mix the two.
# About 4-6 minutes on 2 cores when nothing is built yet.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
parts=${SRM_SAN_PARTS:-asan tsan valgrind}
PY=/usr/bin/python3
srm_tmpdir san
cd "$root" || exit 1

# keys DIR SRMUDP: two identities for a loopback pair.
keys() {
	mkdir -p "$1"
	chmod 700 "$1"
	pub_a=$("$2" keygen "$1/a.key") && pub_b=$("$2" keygen "$1/b.key")
}

# ---- ASan + UBSan ----------------------------------------------------------------
if [[ " $parts " == *" asan "* ]]; then
	SAN="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
	# The sanitizer goes into CC/CXX: a CFLAGS given to make on the command
	# line would replace the Makefile's own flags (-Icore, -std=c11, ...),
	# and CC also links the preload and the CLI.
	if make --no-print-directory -j2 BUILD=build-san-asan CC="gcc $SAN" CXX="g++ $SAN" \
		all build-san-asan/unit_tests \
		>"$tmp/asan-build.log" 2>&1; then
		ok "ASan+UBSan build of the whole tree (build-san-asan)"
	else
		fail "ASan+UBSan build"; tail -15 "$tmp/asan-build.log"
	fi
	if [[ -x build-san-asan/unit_tests ]]; then
		if ASAN_OPTIONS=detect_leaks=1 timeout 600 build-san-asan/unit_tests --gtest_brief=1 \
			>"$tmp/asan-unit.log" 2>&1; then
			ok "unit tests under ASan+UBSan ($(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' "$tmp/asan-unit.log" | head -1))"
		else
			fail "unit tests under ASan+UBSan"
			grep -E 'FAILED|ERROR: |runtime error|SUMMARY' "$tmp/asan-unit.log" | head -15
		fi
	fi
	libasan=$(gcc -print-file-name=libasan.so)
	if [[ -x build-san-asan/srmudp && -f build-san-asan/libsrmudp.so && -f $libasan ]] && command -v socat >/dev/null; then
		d=$tmp/asan
		keys "$d" build-san-asan/srmudp
		pa=$(srm_free_port) pb=$(srm_free_port) port=$(srm_free_port)
		head -c $((8 << 20)) /dev/urandom >"$d/blob"
		export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$d/asan"
		export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$d/ubsan"
		LD_PRELOAD="$libasan:$root/build-san-asan/libsrmudp.so" SRMUDP_KEY="$d/b.key" \
			SRMUDP_LISTEN=127.0.0.1:$pb SRMUDP_PEERS="a=$pub_a@127.0.0.1:$pa" SRMUDP_LOG=debug \
			SRMUDP_LOG_FILE="$d/b.log" timeout 120 \
			socat -u TCP-LISTEN:$port,reuseaddr "OPEN:$d/out,creat,trunc" 2>"$d/server.err" &
		srv=$!
		pids+=("$srv")
		for ((i = 0; i < 100; i++)); do grep -q "engine started" "$d/b.log" 2>/dev/null && break; sleep 0.1; done
		LD_PRELOAD="$libasan:$root/build-san-asan/libsrmudp.so" SRMUDP_KEY="$d/a.key" \
			SRMUDP_LISTEN=127.0.0.1:$pa SRMUDP_PEERS="b=$pub_b@127.0.0.1:$pb" SRMUDP_LOG=debug \
			SRMUDP_LOG_FILE="$d/a.log" timeout 120 \
			socat -u "FILE:$d/blob" "TCP:b:$port,retry=20,interval=0.5" 2>"$d/client.err"
		rc=$?
		for ((i = 0; i < 300; i++)); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
		wait "$srv" 2>/dev/null
		unset ASAN_OPTIONS UBSAN_OPTIONS
		reports=$(cat "$d"/asan* "$d"/ubsan* "$d"/*.err 2>/dev/null | grep -cE 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer')
		if ((rc == 0)) && cmp -s "$d/blob" "$d/out"; then
			ok "8 MiB between two socats through the ASan+UBSan preload, intact"
		else
			fail "transfer through the ASan preload (client exit $rc)"; tail -n 5 "$d/a.log" "$d/b.log"
		fi
		if ((reports == 0)); then
			ok "no ASan/UBSan report from either preloaded program"
		else
			fail "$reports sanitizer report(s)"
			cat "$d"/asan* "$d"/ubsan* "$d"/*.err 2>/dev/null | grep -E -A8 'ERROR|runtime error' | head -30
		fi
	else
		fail "ASan transfer: build-san-asan/srmudp, build-san-asan/libsrmudp.so, libasan ($libasan) or socat missing"
	fi
fi

# ---- TSan: the engine's threads ---------------------------------------------------
if [[ " $parts " == *" tsan "* ]]; then
	TSAN="-O1 -g -fsanitize=thread"
	if make --no-print-directory -j2 BUILD=build-san-tsan CC="gcc $TSAN" CXX="g++ $TSAN" \
		build-san-tsan/unit_tests >"$tmp/tsan-build.log" 2>&1; then
		ok "TSan build of the engine and unit tests (build-san-tsan)"
		# setarch -R: TSan's shadow mapping wants no ASLR on some kernels.
		run=(build-san-tsan/unit_tests --gtest_brief=1 --gtest_filter='Engine*')
		command -v setarch >/dev/null && run=(setarch "$(uname -m)" -R "${run[@]}")
		if TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" timeout 600 "${run[@]}" \
			>"$tmp/tsan.log" 2>&1; then
			ok "engine tests under TSan: no race ($(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' "$tmp/tsan.log" | head -1))"
		else
			fail "engine tests under TSan"
			grep -E -A12 'WARNING: ThreadSanitizer|FAILED' "$tmp/tsan.log" | head -40
		fi
	else
		fail "TSan build"; tail -15 "$tmp/tsan-build.log"
	fi
fi

# ---- valgrind memcheck: a native-API transfer --------------------------------------
if [[ " $parts " == *" valgrind "* ]]; then
	if ! command -v valgrind >/dev/null; then
		fail "valgrind not installed (make deps)"
	elif ! make --no-print-directory -j2 BUILD="$BUILD" "$BUILD/srm-echo" "$BUILD/srmudp" >/dev/null 2>&1; then
		fail "cannot build $BUILD/srm-echo"
	else
		d=$tmp/vg
		keys "$d" "$BUILD/srmudp"
		pa=$(srm_free_port) pb=$(srm_free_port)
		head -c $((1 << 20)) /dev/urandom >"$d/blob"
		VG=(valgrind --tool=memcheck --error-exitcode=97 --leak-check=full
		    --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=no)
		SRMUDP_KEY="$d/b.key" SRMUDP_LISTEN=127.0.0.1:$pb SRMUDP_PEERS="a=$pub_a@127.0.0.1:$pa" \
			SRMUDP_LOG=info SRMUDP_LOG_FILE="$d/b.log" timeout 300 \
			"${VG[@]}" --log-file="$d/vg-serve.log" "$BUILD/srm-echo" serve 7 &
		srv=$!
		pids+=("$srv")
		for ((i = 0; i < 300; i++)); do grep -q "engine started" "$d/b.log" 2>/dev/null && break; sleep 0.1; done
		SRMUDP_KEY="$d/a.key" SRMUDP_LISTEN=127.0.0.1:$pa SRMUDP_PEERS="b=$pub_b@127.0.0.1:$pb" \
			SRMUDP_LOG=info SRMUDP_LOG_FILE="$d/a.log" timeout 300 \
			"${VG[@]}" --log-file="$d/vg-send.log" "$BUILD/srm-echo" send b 7 <"$d/blob" >"$d/echoed"
		rc_send=$?
		kill -INT "$srv" 2>/dev/null
		for ((i = 0; i < 300; i++)); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
		wait "$srv"
		# shellcheck disable=SC2034 # read through ${!rc_var} below
		rc_serve=$?
		if cmp -s "$d/blob" "$d/echoed"; then
			ok "1 MiB echoed through srm-echo under memcheck, intact"
		else
			fail "srm-echo transfer under memcheck (send exit $rc_send, $(stat -c %s "$d/echoed") bytes back)"
			tail -n 5 "$d/a.log" "$d/b.log"
		fi
		for side in send serve; do
			rc_var=rc_$side
			summary=$(grep -E 'ERROR SUMMARY|definitely lost' "$d/vg-$side.log" | sed 's/==[0-9]*== //' | tr '\n' ' ')
			if grep -q 'ERROR SUMMARY: 0 errors' "$d/vg-$side.log" && ((${!rc_var} != 97)); then
				ok "memcheck srm-echo $side: $summary"
			else
				fail "memcheck srm-echo $side (exit ${!rc_var}): $summary"
				grep -E -A8 'Invalid|uninitialised|definitely lost in' "$d/vg-$side.log" | head -30
			fi
		done
	fi
fi

srm_finish
