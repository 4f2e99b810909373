#!/usr/bin/env bash
# Build the WebAssembly core of the JavaScript package:
#   dist/srmudp_core.js + dist/srmudp_core.wasm
# from core/protocol (the sans-I/O modules the C engine runs) and
# src/client.c (the client state machine the JS driver calls), linked with
# libsodium, zstd and msgpack-c compiled from their Debian source packages
# (deps.sh fetches them).  Everything but dist/ lands in build/.
#
# Usage: bindings/js/build.sh [--no-deps]
#   --no-deps  do not run deps.sh (the sources are fetched already)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$here/build"
src="$build/src"
out="$build/wasm"
dist="$here/dist"
jobs=${JOBS:-2}

[[ ${1:-} == --no-deps ]] || "$here/deps.sh"
command -v emcc >/dev/null || { echo "build.sh: emcc not found (apt-get install emscripten)" >&2; exit 1; }
# Debian's emscripten runs its JS tools with node and needs Debian's
# node-acorn, which a node from another repository does not look for.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

dir_of() { compgen -G "$src/$1-*/" | head -n1; }
sodium=$(dir_of libsodium)
zstd=$(dir_of libzstd)
msgpack=$(dir_of msgpack-c)
[[ -n $sodium && -n $zstd && -n $msgpack ]] || { echo "build.sh: sources missing in $src (run deps.sh)" >&2; exit 1; }

CFLAGS=(-O2 -fno-strict-aliasing)
mkdir -p "$out/include/sodium" "$out/include/msgpack" "$dist"

# Compile every listed .c (relative to $2) into $out/obj/$1 and archive
# it as $out/lib$1.a; an archive newer than its sources is kept.
build_lib() {
	local name=$1 base=$2
	shift 2
	local lib="$out/lib$name.a" objdir="$out/obj/$name"
	local files
	files=$(cd "$base" && "$@")
	if [[ -f $lib ]] && [[ -z $(cd "$base" && find $files -newer "$lib" 2>/dev/null) ]]; then
		return
	fi
	echo "  EMCC  $name ($(wc -w <<<"$files") files)"
	rm -rf "$objdir"
	mkdir -p "$objdir"
	(cd "$base" && printf '%s\n' $files | nice -n 10 xargs -P "$jobs" -I{} sh -ec \
		'emcc "$@" -c "$0" -o "'"$objdir"'/$(echo "${0#./}" | tr / _).o"' {} "${CFLAGS[@]}" "${LIBFLAGS[@]}")
	rm -f "$lib"
	emar rcs "$lib" "$objdir"/*.o
}

# libsodium without autotools (Debian's source has no configure script):
# the defines configure would find for wasm32-emscripten, and its headers
# with the version.h that configure would write.
cp -R "$sodium/src/libsodium/include/." "$out/include/"
sed -e 's/@VERSION@/1.0.18/' -e 's/@SODIUM_LIBRARY_VERSION_MAJOR@/10/' \
    -e 's/@SODIUM_LIBRARY_VERSION_MINOR@/3/' -e 's/@SODIUM_LIBRARY_MINIMAL_DEF@//' \
    "$sodium/src/libsodium/include/sodium/version.h.in" >"$out/include/sodium/version.h.new"
cmp -s "$out/include/sodium/version.h.new" "$out/include/sodium/version.h" ||
	mv "$out/include/sodium/version.h.new" "$out/include/sodium/version.h"
rm -f "$out/include/sodium/version.h.new"
LIBFLAGS=(-DCONFIGURED=1 -DNATIVE_LITTLE_ENDIAN=1 -DHAVE_POSIX_MEMALIGN=1 -DHAVE_SYS_MMAN_H=1
	-DHAVE_MPROTECT=1 -DHAVE_MLOCK=1 -DHAVE_GETPID=1 -DHAVE_NANOSLEEP=1 -DHAVE_WEAK_SYMBOLS=1
	-I"$out/include" -I"$out/include/sodium"
	-I"$sodium/src/libsodium/include" -I"$sodium/src/libsodium/include/sodium"
	-Wno-unused-command-line-argument)
build_lib sodium "$sodium/src/libsodium" find . -name '*.c'

# zstd: the library's plain C (no x86 assembly in wasm), single-threaded.
LIBFLAGS=(-DZSTD_DISABLE_ASM -DZSTD_MULTITHREAD=0 -DXXH_NAMESPACE=ZSTD_ -I"$zstd/lib" -I"$zstd/lib/common")
build_lib zstd "$zstd/lib" find common compress decompress -name '*.c'

# msgpack-c: its CMake only fills in the byte order (wasm is little-endian).
cp -R "$msgpack/include/." "$out/include/"
for h in sysdep pack_template; do
	sed -e 's/@MSGPACK_ENDIAN_BIG_BYTE@/0/' -e 's/@MSGPACK_ENDIAN_LITTLE_BYTE@/1/' \
		"$msgpack/cmake/$h.h.in" >"$out/include/msgpack/$h.h"
done
LIBFLAGS=(-I"$out/include")
build_lib msgpackc "$msgpack/src" find . -name '*.c'

# uthash is headers only (Debian's uthash-dev); copied so that no host
# header directory enters the wasm build.
cp /usr/include/uthash.h /usr/include/utlist.h "$out/include/"

# The core: exactly the sans-I/O modules a relayed client needs (no path
# manager: a browser has no UDP; no ws.c: the platform's WebSocket frames).
CORE=(noise cookie session aead hkdf replay index_table ratelimit
	conn conn_stream stream frame ack recovery cc pmtu rangeset compress
	rdv_client rdv_wire)
core_src=()
for m in "${CORE[@]}"; do core_src+=("$root/core/protocol/$m.c"); done
EXPORTS=$(grep -o 'SRMJS_EXPORT [a-z_ *]*\bjsc_[a-z_]*' "$here/src/client.c" |
	sed 's/.*\(jsc_[a-z_]*\)$/"_\1"/' | sort -u | paste -sd, -)
# The document's test vectors, computed by this same wasm build of the
# core (test/vectors.c; test_js.sh runs it with node).
vec_src=("$root/core/protocol/noise.c" "$root/core/protocol/cookie.c" "$root/core/protocol/aead.c"
	"$root/core/protocol/hkdf.c" "$here/test/vectors.c")
if [[ ! -f $out/vectors.js || -n $(find "${vec_src[@]}" "$out/libsodium.a" -newer "$out/vectors.js" -print -quit) ]]; then
	echo "  EMCC  vectors.js"
	nice -n 10 emcc "${CFLAGS[@]}" -std=gnu11 -Wall -Wextra -I"$root/core" -I"$root/core/protocol" \
		-I"$out/include" -I"$out/include/sodium" "${vec_src[@]}" "$out/libsodium.a" \
		-s ENVIRONMENT=node -s NODEJS_CATCH_EXIT=0 -s NODEJS_CATCH_REJECTION=0 \
		-s WASM_ASYNC_COMPILATION=0 -s SINGLE_FILE=1 -o "$out/vectors.js"
fi

# Relink only when an input is newer than the output.
if [[ -f $dist/srmudp_core.wasm && -f $dist/srmudp_core.js ]] &&
	[[ -z $(find "$root/core/protocol" "$root/core/srmudp.h" "$here/src" "$here/build.sh" \
		"$out"/lib*.a -newer "$dist/srmudp_core.wasm" -print -quit) ]]; then
	echo "  OK    $dist/srmudp_core.wasm is up to date"
	exit 0
fi
echo "  EMCC  srmudp_core.wasm"
nice -n 10 emcc "${CFLAGS[@]}" -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-I"$root/core" -I"$root/core/protocol" -I"$out/include" -I"$out/include/sodium" \
	-I"$zstd/lib" \
	"${core_src[@]}" "$here/src/client.c" \
	"$out/libsodium.a" "$out/libzstd.a" "$out/libmsgpackc.a" \
	-s MODULARIZE=1 -s EXPORT_NAME=createSrmudpCore -s ENVIRONMENT=web,worker,node \
	-s ALLOW_MEMORY_GROWTH=1 -s FILESYSTEM=0 -s EXIT_RUNTIME=0 \
	-s NODEJS_CATCH_EXIT=0 -s NODEJS_CATCH_REJECTION=0 \
	-s "EXPORTED_FUNCTIONS=[\"_malloc\",\"_free\",$EXPORTS]" \
	-s 'EXPORTED_RUNTIME_METHODS=["HEAPU8","HEAP32","HEAPF64"]' \
	-o "$dist/srmudp_core.js"
echo "  OK    $dist/srmudp_core.js, srmudp_core.wasm"
