#!/usr/bin/env node
/*
 * fetch.js — an HTTP/1.0 GET through srmudp, for tests and as an example:
 *   node fetch.js RELAY_URL KEY_FILE PEERS NAME PORT PATH OUT
 * PEERS as SRMUDP_PEERS ("name=KEY ...").  Writes the response body to
 * OUT and prints "status CODE bytes N sha256 HEX"; exit 1 with the error
 * on failure.
 *
 * Environment:
 *   FETCH_STREAMS=N  N requests at once on one client (one line each; OUT
 *                    gets the first body)
 *   FETCH_RATE=B     read at most B bytes/s
 *   FETCH_AGAIN_AFTER=FILE  after the first results, wait until FILE
 *                    exists, then fetch once more on the same client
 *   FETCH_SPY=1      also record what the relay's WebSocket carried and
 *                    print "relay messages M bytes B plaintext P": P is how
 *                    many of 64 samples (32 bytes) of the body appear in
 *                    any message, 0 unless application data went out in
 *                    clear (a body of random bytes does not compress)
 *   FETCH_STATS=1    print the peer's statistics after the requests
 *   FETCH_GATE=NAME  the relay is the gate NAME (one of PEERS): its key pinned
 *   SRMUDP_JS_LOG=1  the client's log lines on stderr
 */
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const srmudp = require('..');

// Record every message of every WebSocket this process opens.
function spyOnWebSockets() {
	const seen = [];
	const Base = globalThis.WebSocket || require('ws');
	class Spy extends Base {
		constructor(...args) {
			super(...args);
			this.addEventListener('message', (ev) => seen.push(Buffer.from(ev.data)));
		}
		send(data) {
			seen.push(Buffer.from(data));
			super.send(data);
		}
	}
	globalThis.WebSocket = Spy;
	return seen;
}

function plaintextSamples(body, messages) {
	let found = 0;
	for (let i = 0; i < 64 && body.length >= 32; i++) {
		const off = Math.floor((body.length - 32) * i / 63);
		const sample = body.subarray(off, off + 32);
		if (messages.some((m) => m.indexOf(sample) >= 0))
			found++;
	}
	return found;
}

// Read at most rate bytes/s: the peer's sending then waits on flow
// control, and the transfer lasts as long as a test needs it to.
async function readSlowly(sock, rate) {
	const parts = [];
	const t0 = performance.now();
	let n = 0, part;
	while ((part = await sock.read()) !== null) {
		parts.push(part);
		n += part.length;
		const ahead = n / rate * 1000 - (performance.now() - t0);
		if (ahead > 0)
			await new Promise((res) => setTimeout(res, ahead));
	}
	return Buffer.concat(parts);
}

const rate = Number(process.env.FETCH_RATE || 0);
const again = process.env.FETCH_AGAIN_AFTER;

function report(results) {
	for (const { status, body } of results) {
		const sha = crypto.createHash('sha256').update(body).digest('hex');
		console.log(`status ${status} bytes ${body.length} sha256 ${sha}`);
	}
}

async function get(client, name, port, path) {
	const sock = await client.connect(name, Number(port));
	await sock.write(`GET ${path} HTTP/1.0\r\nHost: ${name}\r\n\r\n`);
	await sock.end();
	const resp = Buffer.from(rate ? await readSlowly(sock, rate) : await sock.readAll());
	const head = resp.indexOf('\r\n\r\n');
	if (head < 0)
		throw new Error('no HTTP response head in ' + resp.length + ' bytes');
	return { status: resp.subarray(0, head).toString().split(' ')[1], body: resp.subarray(head + 4) };
}

async function main() {
	const [relay, keyFile, peers, name, port, path, out] = process.argv.slice(2);
	if (!out) {
		console.error('usage: fetch.js RELAY_URL KEY_FILE PEERS NAME PORT PATH OUT');
		process.exit(2);
	}
	const log = process.env.SRMUDP_JS_LOG ? (m) => console.error('srmudp: ' + m) : undefined;
	const seen = process.env.FETCH_SPY ? spyOnWebSockets() : null;
	const n = Number(process.env.FETCH_STREAMS || 1);
	const gate = process.env.FETCH_GATE || undefined;
	const client = await srmudp.createClient({ relay, key: srmudp.loadKey(keyFile), peers, log, gate });
	const t0 = performance.now();
	let results;
	try {
		results = await Promise.all(Array.from({ length: n }, () => get(client, name, port, path)));
		if (process.env.FETCH_STATS)
			console.log('stats ' + JSON.stringify(client.peerStats(name)));
		if (again) {
			// The first result now; then, once the test says so (it
			// restarted the peer, say), the same request on this client.
			report(results);
			while (!fs.existsSync(again))
				await new Promise((res) => setTimeout(res, 50));
			results = [await get(client, name, port, path)];
		}
	} finally {
		client.close();
	}
	const secs = (performance.now() - t0) / 1000;
	fs.writeFileSync(out, results[0].body);
	report(results);
	const total = results.reduce((a, r) => a + r.body.length, 0);
	console.error(`fetch.js: ${total} bytes in ${secs.toFixed(2)} s`);
	if (seen) {
		const bytes = seen.reduce((a, m) => a + m.length, 0);
		console.log(`relay messages ${seen.length} bytes ${bytes} plaintext ${plaintextSamples(results[0].body, seen)}`);
	}
}

main().then(() => process.exit(0), (e) => {
	console.error(`fetch.js: ${e.message}${e.code ? ' (' + e.code + ')' : ''}`);
	process.exit(1);
});
