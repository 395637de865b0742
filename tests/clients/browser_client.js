// socket.io-client running in headless Chromium (driven by playwright-core), for the tests
// where a browser matters (tests/delivery.rs).
//
//   node browser_client.js '{"url": "http://127.0.0.1:PORT", "profile": "fresh dir",
//                            "reconnection_delay_ms": N, "parser": "json" | "msgpack",
//                            "transports": ["websocket"], "ack": {"event": [args]}}'
//
// The page, served by this script on another loopback port (as an app's page on its own
// origin would be; Chromium blocks a blank page from reaching loopback), loads the browser
// bundle of the pinned socket.io-client (`dist/socket.io.min.js`, or
// `dist/socket.io.msgpack.min.js`, the bundle with socket.io-msgpack-parser built in) and
// connects over `transports` (default: WebSocket only). An event named in `ack` that asks
// for an acknowledgement gets those arguments back. Binary arguments are printed as
// {"$binary": base64}. Prints one JSON line per thing the page saw:
//   {"type": "connect", "sid": "…", "recovered": bool}
//   {"type": "disconnect", "reason": "…"}, {"type": "connect_error", "error": "…"}
//   {"type": "event", "event": "…", "args": [...]}
// and {"type": "failed", "error": "…"} (then exits 1) when the page cannot run. Exits when
// stdin closes.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { launch } = require('./chromium');

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/// Serves the page and the bundle on 127.0.0.1; resolves to the page's URL.
function servePage(parser) {
  const name = parser === 'msgpack' ? 'socket.io.msgpack.min.js' : 'socket.io.min.js';
  const bundle = path.join(path.dirname(require.resolve('socket.io-client')), '..', '..', 'dist', name);
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
  const pageUrl = await servePage(opts.parser);
  const browser = await launch(opts.profile);
  const page = browser.pages()[0] || await browser.newPage();
  page.on('pageerror', (e) => print({ type: 'failed', error: String(e) }));
  await page.exposeFunction('report', print);
  await page.goto(pageUrl);
  await page.evaluate(({ url, delay, transports, acks }) => {
    const toBase64 = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
    const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    // Binary as the tests write it: {"$binary": base64}, both ways.
    const printable = (v) => {
      if (v instanceof ArrayBuffer) return { $binary: toBase64(new Uint8Array(v)) };
      if (ArrayBuffer.isView(v)) return { $binary: toBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
      if (Array.isArray(v)) return v.map(printable);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, printable(x)]));
      return v;
    };
    const sendable = (v) => {
      if (Array.isArray(v)) return v.map(sendable);
      if (v && typeof v === 'object') {
        // An ArrayBuffer: the msgpack bundle's encoder takes a typed array for a map.
        if (typeof v.$binary === 'string' && Object.keys(v).length === 1) return fromBase64(v.$binary).buffer;
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sendable(x)]));
      }
      return v;
    };
    // eslint-disable-next-line no-undef
    const socket = io(url, {
      transports,
      reconnectionDelay: delay,
      reconnectionDelayMax: delay,
      randomizationFactor: 0,
    });
    socket.on('connect', () => window.report({ type: 'connect', sid: socket.id, recovered: socket.recovered }));
    socket.on('disconnect', (reason) => window.report({ type: 'disconnect', reason }));
    socket.on('connect_error', (e) => window.report({ type: 'connect_error', error: e.message }));
    socket.onAny((event, ...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      window.report({ type: 'event', event, args: printable(args) });
      if (ack && acks[event]) ack(...sendable(acks[event]));
    });
  }, {
    url: opts.url,
    delay: opts.reconnection_delay_ms || 1000,
    transports: opts.transports || ['websocket'],
    acks: opts.ack || {},
  });

  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await browser.close();
  process.exit(0);
}

main().catch((e) => {
  print({ type: 'failed', error: String(e && e.stack || e) });
  process.exit(1);
});
