/*
 * srmudp.js — the JavaScript driver of the WebAssembly core.
 *
 * The core (dist/srmudp_core.wasm: core/protocol compiled with emscripten,
 * and src/client.c) holds every protocol decision: the Noise IK handshake
 * with pinned keys, the sealed DATA packets, streams, loss recovery,
 * congestion control, compression and the rendezvous registration.  This
 * file only does what the C engine's driver does with sockets and epoll:
 * it carries the relay's WebSocket messages in and out, keeps the clock
 * and one timer, and turns the core's stream events into WHATWG streams.
 *
 * Works in Node (>= 18) and in browsers.  In Node it is CommonJS
 * (lib/index.mjs re-exports it for ESM); in a browser, load
 * dist/srmudp_core.js first, then this file: it defines globalThis.srmudp.
 */
'use strict';

(function (root, factory) {
	if (typeof module === 'object' && module.exports)
		module.exports = factory(true);
	else
		root.srmudp = factory(false);
})(typeof globalThis !== 'undefined' ? globalThis : this, function (isNode) {

const KEY_BYTES = 32;
const KEY_TEXT_LEN = 43; // unpadded URL-safe base64 of 32 bytes, as `srmudp keygen`
// Stop building data packets while this much waits in the WebSocket: the
// C engine keeps at most 64 KiB queued too, so that the end-to-end
// transport sees the queue as delay or loss instead of a hidden buffer
// (docs/NAT.md, "Two reliable layers must not fight").
const WS_QUEUE_MAX = 64 * 1024;
// Re-check a backed-up WebSocket this often (it has no "drained" event).
const WS_DRAIN_POLL_MS = 5;
// Without a relay link only the transport's timers (idle timeout, the
// open timeout) run: they need no precision (src/client.c's
// JSC_NO_SESSION_TICK_US, the engine's NO_SESSION_TICK).
const NO_LINK_TICK_MS = 50;
const IO_BYTES = 64 * 1024;
// Relay reconnection, as the C engine's (core/driver/engine_ws.c): 0.5 s
// doubling to 30 s; a link that stayed up 10 s worked, and losing it (a
// relay restart) reconnects at once.
const RELAY_RETRY_MIN_MS = 500;
const RELAY_RETRY_MAX_MS = 30000;
const RELAY_SETTLED_MS = 10000;
// The first registration: a REGISTER/AUTH round trip, retried from 1 s
// (RDV_RETRY_MIN_MS); as long as the engine's connect timeout.
const REGISTER_TIMEOUT_MS = 10000;
const READ_CHUNK = 16 * 1024;
// A task (not a microtask: I/O events get their turn) that no timer clamp
// delays: setImmediate in Node, a MessageChannel message in browsers.
const quickTask = typeof setImmediate === 'function' ? setImmediate
	: typeof MessageChannel === 'function' ? (() => {
		const ch = new MessageChannel(), queue = [];
		ch.port1.onmessage = () => queue.shift()();
		return (fn) => { queue.push(fn); ch.port2.postMessage(0); };
	})() : null;

// enum srm_error (core/srmudp.h) and the events of src/client.c.
const ERR = { INVALID: -1, NOMEM: -2, IO: -3, AUTH: -4, REFUSED: -5, TIMEOUT: -6, RESET: -7,
	UNREACHABLE: -8, VERSION: -9, NOTFOUND: -10, EXISTS: -11, PERM: -12, AGAIN: -13, CLOSED: -14 };
const ERR_TEXT = {
	[-1]: 'invalid argument or input', [-2]: 'out of memory or a limit was reached',
	[-3]: 'system call failed', [-4]: 'authentication failed',
	[-5]: 'connection refused by the peer', [-6]: 'timed out', [-7]: 'reset by the peer',
	[-8]: 'peer unreachable (handshake failed)', [-9]: 'protocol version or capability mismatch',
	[-10]: 'not found', [-11]: 'already exists', [-12]: 'permission problem',
	[-13]: 'not yet, try again', [-14]: 'closed',
};
const ERR_CODE = { [-5]: 'ECONNREFUSED', [-6]: 'ETIMEDOUT', [-7]: 'ECONNRESET', [-8]: 'EHOSTUNREACH',
	[-14]: 'EPIPE' };
const EV = { REGISTERED: 1, OPENED: 2, READABLE: 3, WRITABLE: 4, FIN: 5, RESET: 6, PEER_DOWN: 7,
	NOTFOUND: 8, ESTABLISHED: 9 };
// src/client.c's jsc_peer_stats, in order.
const STATS_FIELDS = ['established', 'rttMs', 'minRttMs', 'cwndBytes', 'pmtu', 'bytesSent',
	'bytesReceived', 'streamBytesSent', 'streamBytesReceived', 'packetsSent', 'packetsReceived',
	'packetsLost', 'packetsRetransmitted', 'streams', 'handshakeAgeMs'];
// enum wire_reset_reason -> the error a stream reset with it means.
const RESET_ERR = [ERR.RESET, ERR.REFUSED, ERR.TIMEOUT, ERR.RESET, ERR.RESET];

class SrmudpError extends Error {
	constructor(err, message) {
		super(message || ERR_TEXT[err] || 'error ' + err);
		this.name = 'SrmudpError';
		this.errno = err;
		if (ERR_CODE[err])
			this.code = ERR_CODE[err];
	}
}

// ---- Keys ---------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function encodeKey(bytes) {
	let s = '';
	for (let i = 0; i < bytes.length; i += 3) {
		const n = bytes[i] << 16 | (bytes[i + 1] || 0) << 8 | (bytes[i + 2] || 0);
		s += B64[n >> 18 & 63] + B64[n >> 12 & 63] + B64[n >> 6 & 63] + B64[n & 63];
	}
	return s.slice(0, Math.ceil(bytes.length * 4 / 3));
}

// A key as `srmudp keygen` writes it: exactly 43 characters, canonical
// (the unused low bits of the last one zero), so one key has one text.
function decodeKey(text, what) {
	if (text instanceof Uint8Array) {
		if (text.length !== KEY_BYTES)
			throw new SrmudpError(ERR.INVALID, `${what}: a key is ${KEY_BYTES} bytes, not ${text.length}`);
		return Uint8Array.from(text);
	}
	if (typeof text !== 'string' || text.length !== KEY_TEXT_LEN)
		throw new SrmudpError(ERR.INVALID, `${what}: bad key ${JSON.stringify(String(text))} ` +
			`(want ${KEY_TEXT_LEN} characters of URL-safe base64, as srmudp keygen prints)`);
	const out = new Uint8Array(KEY_BYTES);
	let acc = 0, bits = 0, o = 0;
	for (const ch of text) {
		const v = B64.indexOf(ch);
		if (v < 0)
			throw new SrmudpError(ERR.INVALID, `${what}: bad key ${JSON.stringify(text)} (character ${JSON.stringify(ch)})`);
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < KEY_BYTES)
				out[o++] = acc >> bits & 255;
		}
		acc &= (1 << bits) - 1;
	}
	if (acc !== 0)
		throw new SrmudpError(ERR.INVALID, `${what}: bad key ${JSON.stringify(text)} (not canonical)`);
	return out;
}

// "name=KEY[@host:port] ..." (SRMUDP_PEERS), or {name: KEY}.  Endpoints
// are accepted and ignored: this client reaches peers through the relay.
function parsePeers(peers) {
	const out = new Map();
	if (typeof peers === 'string') {
		for (const item of peers.split(/[\s,]+/).filter(Boolean)) {
			const eq = item.indexOf('=');
			if (eq <= 0)
				throw new SrmudpError(ERR.INVALID, `peers: bad entry ${JSON.stringify(item)} (want NAME=KEY)`);
			const name = item.slice(0, eq), rest = item.slice(eq + 1);
			const at = rest.indexOf('@');
			addPeer(out, name, at < 0 ? rest : rest.slice(0, at));
		}
	} else if (peers && typeof peers === 'object') {
		for (const [name, key] of Object.entries(peers))
			addPeer(out, name, key);
	} else {
		throw new SrmudpError(ERR.INVALID, 'peers: give "NAME=KEY ..." or {NAME: KEY}');
	}
	if (!out.size)
		throw new SrmudpError(ERR.INVALID, 'peers: no peer given');
	return out;
}

function addPeer(map, name, key) {
	if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name))
		throw new SrmudpError(ERR.INVALID, `peers: bad peer name ${JSON.stringify(name)}`);
	if (map.has(name))
		throw new SrmudpError(ERR.INVALID, `peers: peer ${JSON.stringify(name)} named twice`);
	map.set(name, decodeKey(key, `peers: peer ${JSON.stringify(name)}`));
}

// ---- The WebAssembly core ------------------------------------------------

function randomValue() {
	const b = new Uint32Array(1);
	globalThis.crypto.getRandomValues(b);
	return b[0] >>> 0;
}

// One instance per client (its heap holds that client's keys); the
// compiled module is shared.
let compiled = null;
function loadCore() {
	if (!compiled) {
		let factory, wasm;
		if (isNode) {
			const path = require('path'), fs = require('fs');
			const dir = path.join(__dirname, '..', 'dist');
			try {
				factory = require(path.join(dir, 'srmudp_core.js'));
				wasm = fs.readFileSync(path.join(dir, 'srmudp_core.wasm'));
			} catch (e) {
				throw new SrmudpError(ERR.NOTFOUND, `the WebAssembly core is not built (${dir}): ` +
					'run bindings/js/build.sh');
			}
			// Emscripten 3.1.6 would fetch() a file path under Node 18+.
			compiled = { factory, wasm: WebAssembly.compile(wasm) };
		} else {
			factory = globalThis.createSrmudpCore;
			if (typeof factory !== 'function')
				throw new SrmudpError(ERR.NOTFOUND, 'load dist/srmudp_core.js before srmudp.js');
			compiled = { factory, wasm: null };
		}
	}
	const opts = { getRandomValue: randomValue };
	if (compiled.wasm) {
		opts.instantiateWasm = (imports, done) => {
			compiled.wasm.then((mod) => WebAssembly.instantiate(mod, imports)).then((inst) => done(inst, null));
			return {};
		};
	} else if (srmudpCoreUrl) {
		opts.locateFile = (file) => new URL(file, srmudpCoreUrl).href;
	}
	return compiled.factory(opts);
}
let srmudpCoreUrl = null;

function withBytes(M, bytes, fn) {
	const p = M._malloc(bytes.length || 1);
	M.HEAPU8.set(bytes, p);
	try {
		return fn(p);
	} finally {
		M.HEAPU8.fill(0, p, p + bytes.length);
		M._free(p);
	}
}

// ---- Keys: public API ------------------------------------------------------

// A new key pair {secret, publicKey} as text.  In Node, with a path, the
// secret is also written there as `srmudp keygen` does (mode 0600, never
// over an existing file), so the C tools can use it.
// Key work shares one instance; each client has its own (its heap holds
// its keys and sessions).
let keyCore = null;
function keyCoreGet() {
	if (!keyCore) {
		keyCore = loadCore();
		keyCore.catch(() => { keyCore = null; }); // a failed load is tried again
	}
	return keyCore;
}

async function keygen(path) {
	const M = await keyCoreGet();
	const p = M._malloc(2 * KEY_BYTES);
	M._jsc_keygen(p, p + KEY_BYTES);
	const secret = encodeKey(M.HEAPU8.subarray(p, p + KEY_BYTES));
	const publicKey = encodeKey(M.HEAPU8.subarray(p + KEY_BYTES, p + 2 * KEY_BYTES));
	M.HEAPU8.fill(0, p, p + 2 * KEY_BYTES);
	M._free(p);
	if (path !== undefined) {
		if (!isNode)
			throw new SrmudpError(ERR.INVALID, 'keygen: a key file needs Node');
		require('fs').writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' });
	}
	return { secret, publicKey };
}

// Node: the secret key in a key file, refused (as srmudp does) when group
// or others may access it or another user owns it.
function loadKey(path) {
	if (!isNode)
		throw new SrmudpError(ERR.INVALID, 'loadKey needs Node; pass the key text instead');
	const fs = require('fs');
	const st = fs.statSync(path);
	if (st.mode & 0o077)
		throw new SrmudpError(ERR.PERM, `key file ${path} has mode ` +
			`0${(st.mode & 0o777).toString(8)}: group or others can access it; refusing it ` +
			`(run: chmod 600 ${path})`);
	if (typeof process.getuid === 'function' && st.uid !== process.getuid())
		throw new SrmudpError(ERR.PERM, `key file ${path} belongs to another user (uid ${st.uid}); refusing it`);
	const text = fs.readFileSync(path, 'utf8').trim();
	decodeKey(text, `key file ${path}`);
	return text;
}

async function publicKey(secret) {
	const s = decodeKey(secret, 'key');
	const M = await keyCoreGet();
	const out = M._malloc(KEY_BYTES);
	try {
		const rc = withBytes(M, s, (p) => M._jsc_public_key(p, out));
		if (rc < 0)
			throw new SrmudpError(rc, 'key: not a usable X25519 secret');
		return encodeKey(M.HEAPU8.subarray(out, out + KEY_BYTES));
	} finally {
		M._free(out);
	}
}

// ---- Streams -------------------------------------------------------------

// One stream to a peer's port: a WHATWG ReadableStream/WritableStream
// pair, and a small socket-like API over them.
class Socket {
	constructor(client, peer, name, port, id) {
		this._c = client;
		this._peer = peer;
		this._id = id;
		this.remoteName = name;
		this.remotePort = port;
		this._fin = false;       // the peer finished sending
		this._ended = false;     // we sent FIN (or gave the stream up)
		this._dead = null;       // the error that ended the stream
		this._released = false;
		this._waitWritable = [];
		this._opened = new Promise((res, rej) => { this._open = { res, rej }; });
		this._opened.catch(() => {});
		let rctl;
		this.readable = new ReadableStream({
			start: (c) => { rctl = c; },
			pull: () => this._pump(),
			cancel: () => this.close(),
		}, { highWaterMark: 4, size: () => 1 });
		this._rctl = rctl;
		this.writable = new WritableStream({
			write: (chunk) => this._write(chunk),
			close: () => this._shutdown(),
			abort: () => this.destroy(),
		});
		this._reader = null;
		this._writer = null;
	}

	get opened() { return this._opened; }

	// Read what the core has for us while the reader wants more.
	_pump() {
		const c = this._c;
		if (this._dead || this._released)
			return;
		while (this._rctl.desiredSize > 0) {
			const n = c._M._jsc_stream_read(c._j, this._peer, this._id, c._io, READ_CHUNK);
			if (n < 0) {
				this._fail(n === ERR.RESET ? ERR.RESET : n);
				return;
			}
			if (n === 0)
				break;
			// A copy: the heap is reused and may grow (detaching views);
			// the scratch copy is wiped as the written one is.
			this._rctl.enqueue(c._M.HEAPU8.slice(c._io, c._io + n));
			c._M.HEAPU8.fill(0, c._io, c._io + n);
		}
		c._kick(); // reading opened the flow-control window
	}

	_onFin() {
		this._pump();
		this._fin = true;
		try { this._rctl.close(); } catch (e) { /* closed already */ }
		this._maybeRelease();
	}

	async _write(chunk) {
		if (typeof chunk === 'string')
			chunk = new TextEncoder().encode(chunk);
		if (ArrayBuffer.isView(chunk) && !(chunk instanceof Uint8Array))
			chunk = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
		else if (chunk instanceof ArrayBuffer)
			chunk = new Uint8Array(chunk);
		else if (!(chunk instanceof Uint8Array))
			throw new TypeError('write: give a string, an ArrayBuffer or a typed array');
		const c = this._c;
		let off = 0;
		while (off < chunk.length) {
			if (this._dead)
				throw this._dead;
			if (this._ended)
				throw new SrmudpError(ERR.CLOSED, 'write after end');
			const len = Math.min(chunk.length - off, IO_BYTES);
			c._M.HEAPU8.set(chunk.subarray(off, off + len), c._io);
			const n = c._M._jsc_stream_write(c._j, this._peer, this._id, c._io, len);
			c._M.HEAPU8.fill(0, c._io, c._io + len);
			if (n < 0)
				throw this._fail(n);
			off += n;
			c._kick();
			if (n === 0)
				await new Promise((res) => this._waitWritable.push(res));
		}
	}

	_onWritable() {
		const w = this._waitWritable;
		this._waitWritable = [];
		for (const res of w)
			res();
	}

	_shutdown() {
		if (this._dead)
			throw this._dead;
		if (!this._ended) {
			this._ended = true;
			this._c._M._jsc_stream_shutdown(this._c._j, this._peer, this._id);
			this._c._kick();
		}
		this._maybeRelease();
	}

	// The stream ended badly: both directions fail with err.
	_fail(errno, message) {
		if (this._dead)
			return this._dead;
		const e = errno instanceof Error ? errno : new SrmudpError(errno, message);
		this._dead = e;
		this._open.rej(e);
		try { this._rctl.error(e); } catch (x) { /* closed already */ }
		this._onWritable();
		this._release();
		return e;
	}

	_maybeRelease() {
		if (this._fin && this._ended)
			this._release();
	}

	_release() {
		if (this._released)
			return;
		this._released = true;
		this._c._M._jsc_stream_release(this._c._j, this._peer, this._id);
		this._c._streams.delete(this._key());
		this._c._kick();
	}

	_key() { return this._peer + ':' + this._id; }

	// ---- socket-like API ----

	// Resolves once the whole chunk is taken (backpressure).
	write(data) {
		if (!this._writer)
			this._writer = this.writable.getWriter();
		return this._writer.write(data);
	}

	// Next chunk (Uint8Array), or null at the end of the peer's data.
	async read() {
		if (!this._reader)
			this._reader = this.readable.getReader();
		const { value, done } = await this._reader.read();
		return done ? null : value;
	}

	// Everything the peer sends until it finishes, as one Uint8Array.
	async readAll() {
		const parts = [];
		let n = 0, part;
		while ((part = await this.read()) !== null) {
			parts.push(part);
			n += part.length;
		}
		const out = new Uint8Array(n);
		let off = 0;
		for (const p of parts) {
			out.set(p, off);
			off += p.length;
		}
		return out;
	}

	// Half-close: FIN after what was written.
	async end() {
		if (!this._writer)
			this._writer = this.writable.getWriter();
		await this._writer.close();
	}

	// Done with the stream (like close(2)): FIN after buffered data, and
	// whatever still arrives is dropped.
	close() {
		this._ended = true;
		if (!this._dead)
			this._dead = new SrmudpError(ERR.CLOSED, 'socket closed');
		try { this._rctl.close(); } catch (x) { /* closed already */ }
		this._onWritable();
		this._release();
	}

	// Abort both directions; the peer sees a reset.
	destroy() {
		if (!this._released && !this._dead)
			this._c._M._jsc_stream_reset(this._c._j, this._peer, this._id);
		this._fail(ERR.CLOSED, 'socket destroyed');
	}
}

// ---- The client ----------------------------------------------------------

function openWebSocket(url) {
	let WS = globalThis.WebSocket;
	if (typeof WS !== 'function' && isNode) {
		try {
			WS = require('ws');
		} catch (e) {
			throw new SrmudpError(ERR.NOTFOUND, 'no WebSocket in this Node: use Node 22, ' +
				'node --experimental-websocket (Node 20), or npm install ws');
		}
		return new WS(url, { perMessageDeflate: false });
	}
	return new WS(url);
}

class Client {
	constructor(M, opts) {
		this._M = M;
		this._peers = parsePeers(opts.peers);
		this._log = typeof opts.log === 'function' ? opts.log : () => {};
		this._streams = new Map();
		this._peerNames = [];
		this._notfound = new Set();
		this._timer = null;
		this._timerAt = Infinity;
		this._kicked = false;
		this._closed = false;
		this._ws = null;
		this._registeredOnce = false;
		this._openedAt = 0;
		this._retryMs = 0;
		this._reconnect = null;
		const secret = decodeKey(opts.key, 'key');
		let url;
		try {
			url = new URL(opts.relay);
		} catch (e) {
			throw new SrmudpError(ERR.INVALID, `relay: bad URL ${JSON.stringify(String(opts.relay))}`);
		}
		if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
			throw new SrmudpError(ERR.INVALID, `relay: ${JSON.stringify(opts.relay)} is not a ws:// or wss:// URL`);
		this.relay = url.href;
		this._io = M._malloc(IO_BYTES);
		this._ev = M._malloc(16);
		this._evId = M._malloc(8);
		this._j = withBytes(M, secret, (p) => M._jsc_new(p, Date.now() - performance.now(), performance.now()));
		secret.fill(0);
		if (!this._j)
			throw new SrmudpError(ERR.INVALID, 'key: not a usable X25519 secret');
		// The relay's key, pinned: a gate's (a peer named by `gate`), or
		// any server's started with --key (`relayKey`).
		let pin = null;
		if (opts.gate !== undefined) {
			pin = this._peers.get(opts.gate);
			if (!pin) {
				this._free();
				throw new SrmudpError(ERR.INVALID, `gate: ${JSON.stringify(opts.gate)} is not one of the peers`);
			}
		} else if (opts.relayKey !== undefined) {
			pin = decodeKey(opts.relayKey, 'relayKey');
		}
		if (pin)
			withBytes(M, pin, (p) => M._jsc_pin_server(this._j, p));
		for (const [name, pub] of this._peers) {
			const idx = withBytes(M, pub, (p) => M._jsc_add_peer(this._j, p, performance.now()));
			if (idx < 0) {
				this._free();
				throw new SrmudpError(idx, `peers: peer ${JSON.stringify(name)}: ` +
					(idx === ERR.EXISTS ? 'the same key as another peer' : 'unusable key (our own, or invalid)'));
			}
			this._peerNames[idx] = name;
		}
		this.ready = new Promise((res, rej) => { this._readyP = { res, rej }; });
		this.ready.catch(() => {});
		this._rxCount = 0;
		// A relay that takes the connection but never registers us (a
		// gate we are no member of, a key not pinned) would leave
		// createClient waiting for ever.
		this._regTimer = setTimeout(() => {
			if (this._registeredOnce || this._closed)
				return;
			const e = new SrmudpError(ERR.TIMEOUT, `relay ${this.relay}: not registered after ` +
				`${REGISTER_TIMEOUT_MS / 1000} s: ` + (this._rxCount
				? 'it answers but does not take us (a gate admits only its members, and they ' +
				  'pin its key: the gate or relayKey option)'
				: 'no answer'));
			this._log(e.message);
			this._readyP.rej(e);
			this._ws && this._ws.close();
			this._shutdownAll(e);
		}, REGISTER_TIMEOUT_MS);
		this._connect();
	}

	_connect() {
		let ws;
		try {
			ws = openWebSocket(this.relay);
		} catch (e) {
			this._readyP.rej(e);
			this._shutdownAll(e);
			return;
		}
		ws.binaryType = 'arraybuffer';
		this._ws = ws;
		ws.onopen = () => {
			if (ws !== this._ws)
				return;
			this._openedAt = performance.now();
			this._log(`relay ${this.relay}: connected`);
			this._M._jsc_link(this._j, 1, performance.now());
			this._run();
		};
		ws.onmessage = (ev) => {
			if (ws !== this._ws || this._closed || !(ev.data instanceof ArrayBuffer) ||
			    ev.data.byteLength > IO_BYTES)
				return; // the relay sends only binary messages <= 2 KiB
			this._rxCount++;
			this._M.HEAPU8.set(new Uint8Array(ev.data), this._io);
			this._M._jsc_receive(this._j, this._io, ev.data.byteLength, performance.now());
			this._kick();
		};
		// Per the spec an error is followed by a close; Node 20's
		// experimental WebSocket sends only the error when the connection
		// fails, so either means the link is gone.
		ws.onerror = () => this._lost(ws);
		ws.onclose = (ev) => this._lost(ws, ev && ev.code);
	}

	// The relay connection is gone.  Before the first registration that
	// ends the client; after it, the client reconnects as the C engine
	// does (engine_ws.c): sessions and streams wait, and the transport's
	// idle timeout ends them if the relay stays away.
	_lost(ws, code) {
		if (this._closed || ws !== this._ws)
			return;
		this._ws = null;
		try { ws.close(); } catch (e) { /* closing already */ }
		const what = `relay ${this.relay}: connection closed` + (code ? ` (code ${code})` : '');
		if (!this._registeredOnce) {
			const e = new SrmudpError(ERR.IO, what);
			this._log(what);
			this._readyP.rej(e);
			this._shutdownAll(e);
			return;
		}
		this._M._jsc_link(this._j, 0, performance.now());
		// A link that worked for a while lost to a restart comes back at
		// once; one that keeps dying backs off.
		if (this._openedAt && performance.now() - this._openedAt >= RELAY_SETTLED_MS)
			this._retryMs = 0;
		const delay = this._retryMs;
		this._retryMs = Math.min(Math.max(2 * this._retryMs, RELAY_RETRY_MIN_MS), RELAY_RETRY_MAX_MS);
		this._openedAt = 0;
		this._log(`${what}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
		this._reconnect = setTimeout(() => {
			this._reconnect = null;
			if (!this._closed)
				this._connect();
		}, delay);
		this._run();
	}

	// Run the core soon (after the current callback): coalesces the many
	// reasons to run (each message, write, read) into one pass.
	_kick() {
		if (this._kicked || this._closed)
			return;
		this._kicked = true;
		queueMicrotask(() => {
			this._kicked = false;
			this._run();
		});
	}

	_run() {
		if (this._closed)
			return;
		const M = this._M, j = this._j;
		const now = performance.now();
		const ws = this._ws && this._ws.readyState === 1 ? this._ws : null;
		const backed = ws && ws.bufferedAmount > WS_QUEUE_MAX;
		// No data packets without a link: they would only count as lost.
		M._jsc_flush(j, now, ws && !backed ? 1 : 0);
		let n;
		while ((n = M._jsc_out_take(j, this._io, IO_BYTES)) > 0) {
			if (ws)
				ws.send(M.HEAPU8.slice(this._io, this._io + n));
		}
		this._events();
		let at = M._jsc_deadline(j, performance.now());
		// Blocked, the core's "send now" would wake us at once, again and
		// again: look again when the queue may have drained, or (no link)
		// at the pace the transport's timers need.
		if (backed)
			at = Math.max(at, now + WS_DRAIN_POLL_MS);
		else if (!ws)
			at = Math.max(at, now + NO_LINK_TICK_MS);
		this._arm(at);
	}

	_arm(at) {
		if (at === this._timerAt && this._timer)
			return;
		this._cancelTimer();
		this._timerAt = at;
		if (at === Infinity)
			return;
		const delay = at - performance.now();
		const fire = () => {
			if (this._timer !== handle)
				return; // re-armed or cancelled meanwhile (a quick task cannot be)
			this._timer = null;
			this._run();
		};
		const handle = {};
		if (delay <= 0 && quickTask) {
			// Due now (a full queue, the per-pass packet cap): browsers
			// would clamp a chained setTimeout(0) to 4 ms.  Only when due,
			// so that waiting never spins.
			quickTask(fire);
		} else {
			handle.id = setTimeout(fire, Math.max(0, Math.ceil(delay)));
		}
		this._timer = handle;
	}

	_cancelTimer() {
		if (this._timer && this._timer.id !== undefined)
			clearTimeout(this._timer.id);
		this._timer = null;
	}

	_events() {
		const M = this._M;
		const ev = this._ev >> 2;
		while (M._jsc_poll_event(this._j, this._ev, this._evId)) {
			const type = M.HEAP32[ev], peer = M.HEAP32[ev + 1], reason = M.HEAP32[ev + 2];
			const id = M.HEAPF64[this._evId >> 3];
			const s = this._streams.get(peer + ':' + id);
			switch (type) {
			case EV.REGISTERED:
				this._registeredOnce = true;
				this._log(`relay ${this.relay}: registered`);
				this._readyP.res();
				break;
			case EV.ESTABLISHED:
				this._log(`peer ${this._peerNames[peer]}: ` + (reason
					? 'handshake answered (relayed, peer initiated)'
					: 'session established (relayed)'));
				break;
			case EV.OPENED:
				if (s)
					s._open.res(s);
				break;
			case EV.READABLE:
				if (s)
					s._pump();
				break;
			case EV.WRITABLE:
				if (s)
					s._onWritable();
				break;
			case EV.FIN:
				if (s)
					s._onFin();
				break;
			case EV.RESET:
				if (s)
					s._fail(RESET_ERR[reason] || ERR.RESET,
						reason === 1 ? `${s.remoteName}:${s.remotePort}: connection refused by the peer` : undefined);
				break;
			case EV.NOTFOUND:
				this._notfound.add(peer);
				break;
			case EV.PEER_DOWN:
				this._peerDown(peer, reason);
				break;
			}
		}
	}

	_peerDown(peer, err) {
		const name = this._peerNames[peer];
		const msg = this._notfound.delete(peer)
			? `peer ${name} is not registered with the relay (or does not list our key)`
			: `peer ${name}: ${ERR_TEXT[err] || 'error ' + err}`;
		this._log(msg);
		for (const s of [...this._streams.values()]) {
			if (s._peer !== peer)
				continue;
			s._released = true; // the core freed the transport with it
			this._streams.delete(s._key());
			s._fail(err, msg);
		}
	}

	// A stream to port on the named peer; resolves once the peer accepted
	// it (rejects with ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT...).
	async connect(name, port) {
		if (this._closed)
			throw new SrmudpError(ERR.CLOSED, 'client closed');
		const peer = this._peerNames.indexOf(name);
		if (peer < 0)
			throw new SrmudpError(ERR.NOTFOUND, `connect: no peer named ${JSON.stringify(name)}`);
		if (!Number.isInteger(port) || port < 1 || port > 65535)
			throw new SrmudpError(ERR.INVALID, `connect: bad port ${JSON.stringify(port)}`);
		await this.ready;
		const id = this._M._jsc_stream_open(this._j, peer, port, performance.now());
		if (id < 0)
			throw new SrmudpError(id, `connect ${name}:${port}: ${ERR_TEXT[id]}`);
		const s = new Socket(this, peer, name, port, id);
		this._streams.set(s._key(), s);
		this._run();
		return s._opened;
	}

	// Statistics of the named peer: the transport's (RTT, congestion
	// window, path MTU, counters) as `srmudp status` shows them.
	peerStats(name) {
		const peer = this._peerNames.indexOf(name);
		if (peer < 0)
			throw new SrmudpError(ERR.NOTFOUND, `peerStats: no peer named ${JSON.stringify(name)}`);
		if (this._closed)
			throw new SrmudpError(ERR.CLOSED, 'client closed');
		const M = this._M, out = M._malloc(8 * STATS_FIELDS.length);
		try {
			M._jsc_peer_stats(this._j, peer, performance.now(), out);
			const v = M.HEAPF64.subarray(out >> 3, (out >> 3) + STATS_FIELDS.length);
			const st = { path: 'relayed' };
			STATS_FIELDS.forEach((f, i) => { st[f] = v[i]; });
			st.established = st.established !== 0;
			if (st.handshakeAgeMs < 0)
				st.handshakeAgeMs = null;
			return st;
		} finally {
			M._free(out);
		}
	}

	_shutdownAll(e) {
		for (const s of [...this._streams.values()])
			s._fail(e);
		this._free();
	}

	_free() {
		this._closed = true;
		this._cancelTimer();
		clearTimeout(this._regTimer);
		if (this._reconnect)
			clearTimeout(this._reconnect);
		this._reconnect = null;
		if (this._j) {
			this._M._jsc_free(this._j);
			this._j = 0;
			this._M._free(this._io);
			this._M._free(this._ev);
			this._M._free(this._evId);
		}
	}

	// Say goodbye to the peers (a CLOSE frame), then drop the relay.
	close() {
		if (this._closed)
			return;
		this._M._jsc_close(this._j);
		this._run();
		const ws = this._ws;
		this._ws = null;
		this._shutdownAll(new SrmudpError(ERR.CLOSED, 'client closed'));
		if (!ws)
			return;
		if (ws.readyState === 1 && ws.bufferedAmount === 0)
			ws.close(1000);
		else
			setTimeout(() => ws.close(1000), 200); // let the CLOSE leave
	}
}

// createClient({relay, key, peers, log}): a client registered with the
// relay (resolves once registered).
async function createClient(opts) {
	if (!opts || typeof opts !== 'object')
		throw new SrmudpError(ERR.INVALID, 'createClient: give {relay, key, peers}');
	const M = await loadCore();
	const c = new Client(M, opts);
	await c.ready;
	return c;
}

// connect({relay, key, peers}, name, port): one stream on a client of its
// own, which closes with the stream's readable side.
async function connect(opts, name, port) {
	const c = await createClient(opts);
	try {
		const s = await c.connect(name, port);
		const release = s._release.bind(s);
		s._release = () => {
			release();
			if (!c._streams.size)
				setTimeout(() => c.close(), 0);
		};
		return s;
	} catch (e) {
		c.close();
		throw e;
	}
}

return {
	keygen, loadKey, publicKey, createClient, connect, SrmudpError,
	// Browsers: where dist/ is, when srmudp_core.wasm is not next to the page.
	setCoreUrl(url) { srmudpCoreUrl = url; },
};
});
