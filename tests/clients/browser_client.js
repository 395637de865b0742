// socket.io-client running in headless Chromium (driven by playwright-core), for the tests
// where a browser matters (tests/delivery.rs).
//
//   node browser_client.js '{"url": "http://127.0.0.1:PORT", "profile": "fresh dir",
//                            "reconnection_delay_ms": N}'
//
// The page, served by this script on another loopback port (as an app's page on its own
// origin would be; Chromium blocks a blank page from reaching loopback), loads the browser
// bundle of the pinned socket.io-client (`dist/socket.io.min.js`) and connects over
// WebSocket. Prints one JSON line per thing the page saw:
//   {"type": "connect", "sid": "…", "recovered": bool}
//   {"type": "disconnect", "reason": "…"}, {"type": "connect_error", "error": "…"}
//   {"type": "event", "event": "…", "args": [...]}
// and {"type": "failed", "error": "…"} (then exits 1) when the page cannot run. Exits when
// stdin closes.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/// Serves the page and the bundle on 127.0.0.1; resolves to the page's URL.
function servePage() {
  const bundle = path.join(path.dirname(require.resolve('socket.io-client')), '..', '..', 'dist', 'socket.io.min.js');
  const server = http.createServer((req, res) => {
    if (req.url === '/socket.io.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      fs.createReadStream(bundle).pipe(res);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><script src="/socket.io.min.js"></script>');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}/`)));
}

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const pageUrl = await servePage();
  const browser = await chromium.launchPersistentContext(opts.profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 60000,
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.on('pageerror', (e) => print({ type: 'failed', error: String(e) }));
  await page.exposeFunction('report', print);
  await page.goto(pageUrl);
  await page.evaluate(({ url, delay }) => {
    // eslint-disable-next-line no-undef
    const socket = io(url, {
      transports: ['websocket'],
      reconnectionDelay: delay,
      reconnectionDelayMax: delay,
      randomizationFactor: 0,
    });
    socket.on('connect', () => window.report({ type: 'connect', sid: socket.id, recovered: socket.recovered }));
    socket.on('disconnect', (reason) => window.report({ type: 'disconnect', reason }));
    socket.on('connect_error', (e) => window.report({ type: 'connect_error', error: e.message }));
    socket.onAny((event, ...args) => window.report({ type: 'event', event, args }));
  }, { url: opts.url, delay: opts.reconnection_delay_ms || 1000 });

  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await browser.close();
  process.exit(0);
}

main().catch((e) => {
  print({ type: 'failed', error: String(e && e.stack || e) });
  process.exit(1);
});
