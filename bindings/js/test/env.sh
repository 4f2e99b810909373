# shellcheck shell=bash
# env.sh — what the JavaScript tests (tests/integration/test_js*.sh) need,
# sourced after tests/lib.sh:
#   js_prepare        exit 77 without node or a way to build the core;
#                     builds it (build.sh; an ok/FAIL line) and picks a
#                     WebSocket for Node; sets js and node_flags
#   jsnode ARGS...    node with those flags
#   js_have_browser   0 when headless Chromium can run test/browser_test.js
#                     (else prints a skip line saying why)

js=$root/bindings/js
node_flags=()

js_prepare() {
	srm_require_tools node python3 sha256sum
	if ! command -v emcc >/dev/null 2>&1 && [[ ! -f $js/dist/srmudp_core.wasm ]]; then
		echo "SKIP: emscripten is not installed (run: bindings/js/deps.sh)"
		exit 77
	fi
	# A WebSocket for Node: its own (Node 22, or 20 with the flag), else
	# the npm package ws.
	if node -e 'process.exit(typeof WebSocket == "function" ? 0 : 1)' 2>/dev/null; then
		:
	elif node --experimental-websocket -e 'process.exit(typeof WebSocket == "function" ? 0 : 1)' 2>/dev/null; then
		node_flags=(--experimental-websocket)
	elif ! (cd "$js" && node -e 'require("ws")') 2>/dev/null &&
		! (cd "$js" && npm install --no-save --no-audit --no-fund ws >/dev/null 2>&1); then
		echo "SKIP: this Node has no WebSocket and npm could not install ws"
		exit 77
	fi
	if command -v emcc >/dev/null 2>&1; then
		local log
		log=$(mktemp)
		if "$js/build.sh" >"$log" 2>&1; then
			ok "bindings/js/build.sh builds the wasm core"
		else
			fail "bindings/js/build.sh builds the wasm core"
			tail -20 "$log"
			rm -f "$log"
			srm_finish
		fi
		rm -f "$log"
	fi
}

jsnode() { node "${node_flags[@]}" "$@"; }

js_have_browser() {
	if ! command -v chromium >/dev/null 2>&1; then
		skip "browser: chromium is not installed (apt-get install chromium)"
		return 1
	fi
	if ! (cd "$js" && node -e 'require("playwright-core")') 2>/dev/null &&
		! (cd "$js" && npm install --no-save --no-audit --no-fund playwright-core >/dev/null 2>&1); then
		skip "browser: npm could not install playwright-core"
		return 1
	fi
}
