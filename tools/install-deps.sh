#!/usr/bin/env bash
# Install the Debian packages srmudp builds against and the real programs
# its tests drive.  Idempotent: when everything is present it prints nothing
# and touches nothing (no apt-get update, no network), so `make test` can call
# it on every run.
#
# Only when something is missing: one `apt-get update` (fresh machines have
# empty or stale lists), then a non-interactive install of just the missing
# packages.  Needs root (or passwordless sudo) only in that case.
set -euo pipefail

PACKAGES=(
	# toolchain
	build-essential gcc g++ make pkg-config
	# libraries the core links against
	libsodium-dev libzstd-dev libmsgpack-dev uthash-dev
	# TLS for wss:// relays (OpenSSL)
	libssl-dev openssl
	# unit tests, sanitizers, fuzzing, instruction counts
	libgtest-dev googletest clang libclang-rt-14-dev valgrind
	# real programs the preload and benchmark tests drive
	netcat-openbsd socat curl python3 redis-server redis-tools
	libhiredis-dev iperf3 openssh-server openssh-client kcptun rsync wget
	# the WebSocket relay behind a proxy and a TLS-terminating reverse proxy
	tinyproxy nginx-light
	# the NAT lab: namespaces, NAT, impairment stage, captures
	nftables iptables conntrack iproute2 iputils-ping
	libnetfilter-queue-dev tshark procps psmisc
	# benchmark plots
	gnuplot-nox
	# the Python package (bindings/python): its tests, and an offline
	# `pip install --no-build-isolation` into a venv
	python3-pytest python3-venv python3-setuptools
	# the JavaScript package (bindings/js): its WebAssembly build (the C
	# sources come from apt-get source: bindings/js/deps.sh) and browser test
	emscripten nodejs dpkg-dev chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
	# db:Status-Status is "installed" only for a fully configured package;
	# half-installed or config-files states count as missing.
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $s == installed ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "install-deps: missing: ${missing[*]}"

if [[ $(id -u) -eq 0 ]]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
else
	echo "install-deps: need root to install them; run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Answer the two questions these packages would otherwise ask: tshark about
# letting non-root users capture, iperf3 about running as a system daemon.
if command -v debconf-set-selections >/dev/null 2>&1; then
	printf '%s\n' \
		'wireshark-common wireshark-common/install-setuid boolean false' \
		'iperf3 iperf3/start_daemon boolean false' |
		"${SUDO[@]}" debconf-set-selections
fi

"${SUDO[@]}" apt-get update -q >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${missing[@]}"
echo "install-deps: done"
