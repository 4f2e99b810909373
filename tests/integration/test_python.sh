#!/usr/bin/env bash
# test_python.sh: the Python package (bindings/python, issue 21).
#
#   1. `pip install --no-build-isolation --no-index` into a venv made with
#      --system-site-packages: it installs offline, from Debian's setuptools.
#   2. pytest with that venv's python (bindings/python/tests), on loopback:
#      a Python client and a Python server (two engines), asyncio with 100
#      concurrent streams, errors as Python's (refused port ->
#      ConnectionRefusedError, an abort -> ConnectionResetError both ways,
#      an unreachable peer under a short SRMUDP_CONNECT_TIMEOUT ->
#      TimeoutError), unmodified servers preloaded by `srmudp run`
#      (python3 -m http.server, an aborting server), configuration and the
#      ctypes structures against core/srmudp.h.
#   3. Across the NAT lab, both hosts behind cone NATs, endpoints by hand
#      as in test_shim_lab.sh:
#
#        a (10.1.0.2) -- NAT A --+-- inet --+-- NAT B -- b (10.2.0.2)
#        pytest, the engine                       srmudp run -- python3 -m http.server
#        from the environment
#
#      (skipped, not failed, without root or namespaces; CI=true fails it).
#
# Exit 0 pass, 1 fail, 77 skipped (no pytest or venv).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
srm_require_built --shim

# Debian's python3 has python3-pytest; a pyenv python3 first on PATH may not.
PY=""
for p in /usr/bin/python3 python3; do
	if "$p" -m pytest --version >/dev/null 2>&1 && "$p" -c 'import venv, ensurepip' 2>/dev/null; then
		PY=$p
		break
	fi
done
if [[ -z $PY ]]; then
	echo "SKIP: no python3 with pytest and venv (run: make deps)"
	exit 77
fi

srm_tmpdir python
srm_clean_env
srm_private_runtime
export PYTHONDONTWRITEBYTECODE=1
TESTS=$root/bindings/python/tests

# --- 1. install -------------------------------------------------------------
# From a copy: pip builds in the source tree and would leave build/ there.
cp -r "$root/bindings/python" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
"$PY" -m venv --system-site-packages "$tmp/venv" || { echo "FAIL: venv"; exit 1; }
VPY=$tmp/venv/bin/python
check "pip install --no-build-isolation --no-index (offline) into a venv" \
	"$VPY" -m pip install -q --no-index --no-build-isolation "$tmp/src"
export LIBSRMUDP_CORE=$BUILD/libsrmudp-core.so SRM_CLI=$SRMUDP SRM_ROOT=$root
installed() { (cd "$tmp" && "$VPY" -c 'import srmudp, sys
sys.exit(not srmudp.__file__.startswith(sys.argv[1]))' "$tmp/venv/"); }
check "the tests import the installed package, not the source" installed

# --- 2. loopback --------------------------------------------------------------
pytest_run() { (cd "$tmp" && "$VPY" -m pytest -q -rs -p no:cacheprovider "$@"); }
check "pytest on loopback: sockets, asyncio x100, errors, preloaded servers, config, ABI" \
	pytest_run "$TESTS"

# --- 3. the NAT lab ------------------------------------------------------------
# In a subshell: the lab's EXIT trap takes it down when the subshell ends,
# and its skip (exit 77) skips this part only.
(
	source "$root/tests/lab/lab.sh"
	lab_require_root
	lab_up --nat-a cone --nat-b cone
	srm_lab_keys
	mkdir -p "$work/www"
	head -c 4M /dev/urandom >"$work/www/blob"
	sha=$(sha256sum "$work/www/blob" | cut -d' ' -f1)
	nat_a=$(lab_addr nata v4)
	nat_b=$(lab_addr natb v4)
	lab_bg b env SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@$nat_a:4000" \
		SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log" \
		"$SRMUDP" run -- /usr/bin/python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work/www"
	lab_wait_port b tcp 8000 10 || echo "the preloaded http.server on b did not start"
	check "pytest across two NATs: a Python client on a, a preloaded http.server on b" \
		lab_exec a env SRMUDP_KEY="$work/a.key" SRMUDP_LISTEN=4000 \
		SRMUDP_PEERS="b=$pub_b@$nat_b:4000" SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log" \
		SRM_LAB=1 SRM_LAB_PORT=8000 SRM_LAB_SHA="$sha" SRM_LAB_NAT_B="$nat_b" \
		bash -c 'cd "$1" && shift && exec "$@"' _ "$tmp" \
		"$VPY" -m pytest -q -rs -p no:cacheprovider "$TESTS/test_lab.py"
	check "the session went direct through both NATs (no relay)" \
		grep -Eq "session (established )?with .*\(direct" "$work/a.log"
	((failures == 0)) || { tail -n 20 "$work/a.log" "$work/b.log"; exit 1; }
)
case $? in
0) ok "the NAT lab part" ;;
77) skip "the NAT lab part (no root or network namespaces)" ;;
*) fail "the NAT lab part" ;;
esac

srm_finish
