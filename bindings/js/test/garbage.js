#!/usr/bin/env node
/*
 * garbage.js — a registered client against hostile relay messages, then
 * still at work:
 *   node garbage.js RELAY_URL KEY_FILE PEERS NAME PORT PATH COUNT
 * registers with the relay, feeds the wasm core COUNT forged messages as
 * if the relay had sent them (random bytes; random bytes behind the
 * rendezvous header; RELAY packets naming the listed peer NAME and
 * carrying a mangled INIT, RESP, COOKIE_REPLY or DATA: the relay's
 * header is not authenticated, so anyone on the path could send these),
 * then fetches PATH from NAME:PORT.  Prints "forged N dropped D" and the
 * fetch's "status CODE bytes N sha256 HEX"; exit 1 if anything threw.
 */
'use strict';
const crypto = require('crypto');
const srmudp = require('..');

// A valid-looking start for each inner type: header, then random bytes
// of the type's exact size (so the length checks pass and the MAC, index
// and AEAD checks are what must refuse it).
const INNER = [[1, 176], [2, 124], [3, 64], [4, 32 + 64]];

async function main() {
	const [relay, keyFile, peers, name, port, path, countArg] = process.argv.slice(2);
	if (!countArg) {
		console.error('usage: garbage.js RELAY_URL KEY_FILE PEERS NAME PORT PATH COUNT');
		process.exit(2);
	}
	const client = await srmudp.createClient({ relay, key: srmudp.loadKey(keyFile), peers });
	// The test reaches into the client for its core: the one way to play
	// the relay's part without running a hostile relay.
	const M = client._M, j = client._j, io = client._io;
	const peer = client._peers.get(name);
	const before = M._jsc_dropped(j);
	const count = Number(countArg);
	for (let i = 0; i < count; i++) {
		let msg;
		const kind = i % 6;
		if (kind === 0) {
			msg = crypto.randomBytes(1 + crypto.randomInt(1500));
		} else if (kind === 1) {
			msg = crypto.randomBytes(5 + crypto.randomInt(300));
			msg.set([8, 1, 0, 0]);
		} else {
			const [type, size] = INNER[kind - 2];
			msg = crypto.randomBytes(36 + size);
			msg.set([9, 1, 0, 0]);
			peer.forEach((b, k) => { msg[4 + k] = b; });
			msg.set([type, 1, 0, 0], 36);
		}
		M.HEAPU8.set(msg, io);
		M._jsc_receive(j, io, msg.length, performance.now());
	}
	client._run();
	console.log(`forged ${count} dropped ${M._jsc_dropped(j) - before}`);
	const sock = await client.connect(name, Number(port));
	await sock.write(`GET ${path} HTTP/1.0\r\n\r\n`);
	await sock.end();
	const resp = Buffer.from(await sock.readAll());
	const head = resp.indexOf('\r\n\r\n');
	const body = resp.subarray(head + 4);
	console.log(`status ${resp.subarray(0, head).toString().split(' ')[1]} bytes ${body.length} ` +
		`sha256 ${crypto.createHash('sha256').update(body).digest('hex')}`);
	client.close();
}

main().then(() => process.exit(0), (e) => {
	console.error('garbage.js: ' + (e && e.message || e));
	process.exit(1);
});
