#!/usr/bin/env bash
# Install what bindings/js builds with, from Debian's registry only:
# emscripten (3.1.6 on Debian 12), nodejs, and the Debian *source*
# packages of the core's C dependencies (libsodium, zstd, msgpack-c),
# which build.sh compiles to WebAssembly.  Idempotent and quiet when
# everything is present; needs root (or passwordless sudo) otherwise.
#
# Sources land in bindings/js/build/src/ (not committed).  apt-get source
# needs deb-src entries: when apt knows none, one is added in
# /etc/apt/sources.list.d/srmudp-js-src.sources for the suites the
# machine's own deb entries use.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/build/src"
PACKAGES=(emscripten nodejs dpkg-dev xz-utils uthash-dev)
SOURCES=(libsodium libzstd msgpack-c)

if [[ $(id -u) -eq 0 ]]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
else
	SUDO=(false)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $s == installed ]] || missing+=("$p")
done
# nodejs from another repository (nodesource) also provides node.
if [[ " ${missing[*]} " == *" nodejs "* ]] && command -v node >/dev/null; then
	missing=("${missing[@]/nodejs/}")
fi
read -r -a missing <<<"${missing[*]}"

need_src=()
for s in "${SOURCES[@]}"; do
	compgen -G "$src/$s-*/" >/dev/null || need_src+=("$s")
done
((${#missing[@]} == 0 && ${#need_src[@]} == 0)) && exit 0

if [[ ${SUDO[*]} == false ]] && ((${#missing[@]})); then
	echo "bindings/js/deps.sh: need root to install: ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
if ((${#missing[@]})); then
	echo "bindings/js/deps.sh: installing ${missing[*]}"
	"${SUDO[@]}" apt-get update -q >/dev/null
	updated=1
	"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((${#need_src[@]})); then
	# apt-get source needs deb-src lines; add them for the deb ones' suites.
	if ! apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -q '^Sources$'; then
		list=/etc/apt/sources.list.d/srmudp-js-src.sources
		suites=$(. /etc/os-release && echo "$VERSION_CODENAME $VERSION_CODENAME-updates")
		echo "bindings/js/deps.sh: adding deb-src entries ($list)"
		printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
			"Suites: $suites" 'Components: main' \
			'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
			'Types: deb-src' 'URIs: http://deb.debian.org/debian-security' \
			"Suites: $(. /etc/os-release && echo "$VERSION_CODENAME")-security" 'Components: main' \
			'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
			"${SUDO[@]}" tee "$list" >/dev/null
		updated=0
	fi
	((updated)) || "${SUDO[@]}" apt-get update -q >/dev/null
	mkdir -p "$src"
	echo "bindings/js/deps.sh: fetching Debian sources: ${need_src[*]}"
	# One at a time, newest version first: a mirror may lack the newest
	# (a security update's sources), and any bookworm version of these
	# libraries serves the self-contained wasm build.
	for s in "${need_src[@]}"; do
		ok=0
		for v in "" $(apt-cache showsrc "$s" | sed -n 's/^Version: //p'); do
			if (cd "$src" && apt-get source -q "$s${v:+=$v}" >/dev/null 2>&1); then
				ok=1
				break
			fi
		done
		if ((!ok)); then
			echo "bindings/js/deps.sh: apt-get source $s failed" >&2
			exit 1
		fi
	done
fi
