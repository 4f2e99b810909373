#!/usr/bin/env node
/*
 * browser_test.js — test/browser.html in headless Chromium (Debian's
 * chromium, driven by npm's playwright-core): the page fetches a file
 * through the relay with the package as a browser loads it.
 *   node browser_test.js PAGE_URL RELAY_URL KEY_FILE PEERS NAME PORT PATH
 * Prints "status CODE bytes N sha256 HEX"; exit 1 with the error.
 * CHROMIUM: the browser binary (default /usr/bin/chromium).
 */
'use strict';
const { chromium } = require('playwright-core');
const srmudp = require('..');

async function main() {
	const [page, relay, keyFile, peers, name, port, path] = process.argv.slice(2);
	if (!path) {
		console.error('usage: browser_test.js PAGE_URL RELAY_URL KEY_FILE PEERS NAME PORT PATH');
		process.exit(2);
	}
	const key = srmudp.loadKey(keyFile);
	// --no-sandbox: tests run as root, where Chromium's sandbox refuses to start.
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		args: ['--no-sandbox'],
	});
	try {
		const p = await browser.newPage();
		p.on('console', (m) => console.error('page: ' + m.text()));
		p.on('pageerror', (e) => console.error('page error: ' + e.message));
		await p.goto(page);
		const r = await p.evaluate(([relay, key, peers, name, port, path]) =>
			srmudpFetch({ relay, key, peers, log: (m) => console.log(m) }, name, Number(port), path),
			[relay, key, peers, name, port, path]);
		console.log(`status ${r.status} bytes ${r.bytes} sha256 ${r.sha256}`);
		console.error(`browser_test.js: ${r.bytes} bytes in ${(r.ms / 1000).toFixed(2)} s`);
	} finally {
		await browser.close();
	}
}

main().then(() => process.exit(0), (e) => {
	console.error(`browser_test.js: ${e.message}`);
	process.exit(1);
});
