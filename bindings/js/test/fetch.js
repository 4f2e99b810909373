#!/usr/bin/env node
/*
 * fetch.js — an HTTP/1.0 GET through srmudp, for tests and as an example:
 *   node fetch.js RELAY_URL KEY_FILE PEERS NAME PORT PATH OUT
 * PEERS as SRMUDP_PEERS ("name=KEY ...").  Writes the response body to
 * OUT and prints "status CODE bytes N sha256 HEX"; exit 1 with the error
 * on failure.
 */
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const srmudp = require('..');

async function main() {
	const [relay, keyFile, peers, name, port, path, out] = process.argv.slice(2);
	if (!out) {
		console.error('usage: fetch.js RELAY_URL KEY_FILE PEERS NAME PORT PATH OUT');
		process.exit(2);
	}
	const log = process.env.SRMUDP_JS_LOG ? (m) => console.error('srmudp: ' + m) : undefined;
	const sock = await srmudp.connect({ relay, key: srmudp.loadKey(keyFile), peers, log }, name, Number(port));
	await sock.write(`GET ${path} HTTP/1.0\r\nHost: ${name}\r\n\r\n`);
	await sock.end();
	const resp = Buffer.from(await sock.readAll());
	const head = resp.indexOf('\r\n\r\n');
	if (head < 0)
		throw new Error('no HTTP response head in ' + resp.length + ' bytes');
	const status = resp.subarray(0, head).toString().split(' ')[1];
	const body = resp.subarray(head + 4);
	fs.writeFileSync(out, body);
	const sha = crypto.createHash('sha256').update(body).digest('hex');
	console.log(`status ${status} bytes ${body.length} sha256 ${sha}`);
}

main().then(() => process.exit(0), (e) => {
	console.error(`fetch.js: ${e.message}${e.code ? ' (' + e.code + ')' : ''}`);
	process.exit(1);
});
