// Drives the relay's admin page (GET /ui) in headless Chromium through playwright-core,
// as an operator would, for tests/ui.rs.
//
//   node ui_check.js '{"admin": "http://127.0.0.1:PORT", "token": "…", "wrong_token": "…",
//                      "sid": "…", "room": "…", "event": "…", "data": {…},
//                      "screenshot": "path.png", "profile": "fresh dir", "chart_ms": N}'
//
// Steps, each printed as one JSON line on stdout when it passed:
//   refused   the page asks for a token; a wrong one is refused and the prompt comes back
//   listed    with the right token, the socket `sid` and the room `room` are listed
//   emitted   the emit form sends `event` with `data` to `sid` and reports 1 recipient
//   charted   the rate chart got several points; the screenshot is saved
// Any failure prints {"step": "failed", "error": "…"} and exits 1. The token must never
// be visible in the page.
'use strict';

const { launch } = require('./chromium');

const STEP_MS = 15000;

function say(step, extra = {}) {
  process.stdout.write(JSON.stringify({ step, ...extra }) + '\n');
}

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const browser = await launch(opts.profile, { viewport: { width: 1280, height: 900 } });
  try {
    const page = browser.pages()[0] || await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    // Refused tokens are part of the test; any other failed request is a problem.
    page.on('response', (r) => { if (r.status() >= 400 && r.status() !== 401) problems.push(`${r.status()} ${r.url()}`); });

    await page.goto(`${opts.admin}/ui`);
    // Tokens are set: the page asks for one.
    await page.locator('#token-dialog[open]').waitFor();
    await page.fill('#token-input', opts.wrong_token);
    await page.click('#token-form button[type=submit]');
    await page.locator('#token-message', { hasText: 'refused' }).waitFor();
    await page.locator('#token-dialog[open]').waitFor();
    say('refused');

    await page.fill('#token-input', opts.token);
    await page.click('#token-form button[type=submit]');
    await page.locator('#status[data-state=live]').waitFor();
    await page.locator('#socket-list td', { hasText: opts.sid }).waitFor();
    await page.locator('#rooms-table td', { hasText: opts.room }).first().waitFor();
    say('listed', { total: await page.textContent('#socket-total') });

    // Clicking the sid fills the form's target.
    await page.locator('#socket-list td', { hasText: opts.sid }).click();
    const kind = await page.inputValue('#emit-kind');
    const target = await page.inputValue('#emit-target');
    if (kind !== 'sid' || target !== opts.sid) throw new Error(`clicking the sid set ${kind} ${target}`);
    await page.fill('#emit-event', opts.event);
    await page.fill('#emit-data', JSON.stringify(opts.data));
    await page.click('#emit-form button[type=submit]');
    await page.locator('#emit-result', { hasText: 'Sent to 1 socket.' }).waitFor();
    say('emitted');

    // The test pushes meanwhile: wait for the chart to show it, then take the picture.
    await page.waitForFunction(() => Number(document.querySelector('#rate-deliveries').textContent) > 0);
    await page.waitForTimeout(opts.chart_ms || 0);
    const text = await page.evaluate(() => document.documentElement.outerHTML);
    if (text.includes(opts.token)) throw new Error('the token is visible in the page');
    if (problems.length) throw new Error('page errors: ' + problems.join('; '));
    await page.screenshot({ path: opts.screenshot, fullPage: true });
    say('charted');
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (error) => {
  say('failed', { error: String(error && error.stack || error) });
  process.exit(1);
});
