// Debian's /usr/bin/chromium, headless, through playwright-core (which downloads no
// browser): the one launch the page drivers (ui_check.js, browser_client.js) share.
'use strict';

const { chromium } = require('playwright-core');

// A persistent context is how playwright takes a fresh --user-data-dir (`profile`).
function launch(profile, extra = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 60000,
    ...extra,
  });
}

module.exports = { launch };
