// The attacker's tour of the composer page (issue 18, item 5; docs/relay.md,
// "Attacker's tour"): a hostile message opened in the page, in headless
// Chromium (Debian's, driven by playwright-core; no browser download).
// Everything the hostile message references points at a local "bait" HTTP
// server that counts the requests it gets: nothing may run, nothing may be
// fetched. Then the page's own Content-Security-Policy, checked in Chromium:
// inline scripts and handlers, remote images, fetch and WebSocket to another
// host are blocked and reported as violations.
//
//   node --test tests/js/attacker_tour.test.mjs
//
// Needs: scripts/setup.sh (chromium, web/node_modules) and the postwire
// binary (POSTWIRE_BIN, default target/debug/postwire). Delivers into a
// pickup directory: no SMTP server needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, webRequire } from './web-helpers.mjs';

process.env.POSTWIRE_BIN ??= path.join(ROOT, 'target/debug/postwire');
const { addToken, startRelay } = await import('../e2e/harness.mjs');

const CHROMIUM = '/usr/bin/chromium';
const tmp = mkdtempSync(path.join(tmpdir(), 'postwire-attacker-tour-'));
let browser;
let relay;
let base;
let token;
let bait;
/** Requests the bait server got: `METHOD path`. */
const hits = [];

/** Starts the bait server: answers everything (a GIF, a page, an upgrade refusal) and records it. */
function startBait() {
  const gif = Buffer.from('R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBAAA=', 'base64');
  const server = http.createServer((req, res) => {
    // The browser's own favicon request of a page it shows is not the page's doing.
    if (req.url !== '/favicon.ico') hits.push(`${req.method} ${req.url}`);
    if (req.url.startsWith('/frame-host')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><iframe id="f" src="${base}"></iframe>`);
      return;
    }
    res.writeHead(200, { 'content-type': req.url.includes('img') ? 'image/gif' : 'text/plain' });
    res.end(req.url.includes('img') ? gif : 'bait');
  });
  server.on('upgrade', (req, socket) => {
    hits.push(`UPGRADE ${req.url}`);
    socket.destroy();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)`);
  assert.ok(existsSync(process.env.POSTWIRE_BIN), `postwire binary ${process.env.POSTWIRE_BIN} is missing: cargo build -p postwire-relay --bin postwire`);
  const dist = path.join(tmp, 'dist');
  execFileSync('bash', [path.join(ROOT, 'scripts/build-web.sh')], { env: { ...process.env, POSTWIRE_WEB_OUT: dist }, stdio: 'inherit' });
  const data = path.join(tmp, 'data');
  token = addToken(data, 'web', ['@example.com']);
  relay = await startRelay({ dataDir: data, args: ['--pickup-dir', path.join(tmp, 'pickup')], env: { POSTWIRE_WEB_DIR: dist, POSTWIRE_LOG: 'warn' } });
  base = `${relay.http}/`;
  const server = await startBait();
  bait = { server, url: `http://127.0.0.1:${server.address().port}` };
  const { chromium } = webRequire('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await relay?.kill('SIGTERM');
  bait?.server.close();
});

/** The hostile HTML: every way an HTML mail has of running code or fetching. */
function hostileHtml(b) {
  return `<html><head>
<meta http-equiv="refresh" content="0;url=${b}/meta-refresh">
<base href="${b}/base/">
<link rel="stylesheet" href="${b}/link-stylesheet"><link rel="prefetch" href="${b}/link-prefetch"><link rel="preload" as="image" href="${b}/link-preload-img">
<style>@import url(${b}/css-import); body { background: url('${b}/css-body-img'); } @font-face { font-family: x; src: url(${b}/css-font); } p { font-family: x; }</style>
<script>window.top.PWNED = 1; document.getElementById('m').textContent = 'RAN'; fetch('${b}/script-fetch');</script>
<script src="${b}/script-src"></script>
</head><body onload="fetch('${b}/body-onload')" background="${b}/body-background-img">
<div id="m">inert</div>
<p style="background-image:url(${b}/css-inline-img)">Quarterly figures attached.</p>
<img src="${b}/img-remote" alt="pixel"><img src="relative-img"><img srcset="${b}/img-srcset 1x">
<img src="data:," onerror="fetch('${b}/img-onerror')">
<picture><source srcset="${b}/img-picture"><img alt="p"></picture>
<svg><image href="${b}/svg-img"></image><a href="javascript:fetch('${b}/svg-js')"><text>svg</text></a></svg>
<video poster="${b}/video-poster-img" src="${b}/video-src"></video><audio src="${b}/audio-src" autoplay></audio>
<iframe src="${b}/iframe"></iframe><iframe srcdoc="<script>fetch('${b}/iframe-srcdoc')</script>"></iframe>
<object data="${b}/object"></object><embed src="${b}/embed">
<table background="${b}/table-background-img"><tr><td>cell</td></tr></table>
<input type="image" src="${b}/input-image-img">
<form id="f" action="${b}/form-post" method="post"><input name="q" value="secret"><button id="go" type="submit">Go</button></form>
<a id="jslink" href="javascript:window.top.PWNED=2;fetch('${b}/js-link')">Open the figures</a>
<a id="datalink" href="data:text/html,<script>fetch('${b}/data-link')</script>">data link</a>
<details open ontoggle="fetch('${b}/ontoggle')"><summary>more</summary>x</details>
<div tabindex="0" autofocus onfocus="fetch('${b}/onfocus')">focus me</div>
</body></html>`;
}

/** A hostile iCalendar part: markup and scripts in every text it shows. */
function hostileIcs(b) {
  return [
    'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//attacker//EN', 'METHOD:REQUEST', 'BEGIN:VEVENT',
    'UID:hostile@example.com', 'DTSTAMP:20261120T100000Z', 'DTSTART:20261203T150000Z', 'DTEND:20261203T160000Z',
    `SUMMARY:<img src="${b}/ics-summary-img" onerror="window.top.PWNED=3">Budget`,
    `LOCATION:<script>window.top.PWNED=4</script><a href="javascript:fetch('${b}/ics-js')">Room</a>`,
    `DESCRIPTION:<iframe src="${b}/ics-iframe"></iframe>`,
    `URL:javascript:fetch('${b}/ics-url')`, `ATTACH:${b}/ics-attach`,
    `ORGANIZER;CN="<b onmouseover=x>Eve":mailto:eve@example.com`,
    `ATTENDEE;CN="<img src=${b}/ics-attendee-img>":mailto:ann@example.com`,
    'END:VEVENT', 'END:VCALENDAR', '',
  ].join('\r\n');
}

/** The hostile .eml: the HTML, a text part, the .ics and an attachment with a hostile name. */
function hostileEml(b) {
  const B = 'b0undary-hostile';
  return [
    'From: "<img src=x onerror=alert(1)>Eve" <eve@example.com>',
    'To: ann@example.com',
    `Subject: <script>window.top.PWNED=5</script>Hostile figures`,
    'Message-ID: <hostile-1@example.com>',
    'Date: Tue, 01 Dec 2026 09:00:00 +0000',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${B}"`,
    '',
    `--${B}`,
    'Content-Type: multipart/alternative; boundary="alt-b"',
    '',
    '--alt-b',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Quarterly figures attached.',
    '--alt-b',
    'Content-Type: text/html; charset=utf-8',
    '',
    hostileHtml(b),
    '--alt-b--',
    `--${B}`,
    'Content-Type: text/calendar; charset=utf-8; method=REQUEST',
    'Content-Disposition: attachment; filename="invite.ics"',
    '',
    hostileIcs(b),
    `--${B}`,
    'Content-Type: text/html; name="<img src=x onerror=alert(2)>.html"',
    'Content-Disposition: attachment; filename="<img src=x onerror=alert(2)>.html"',
    '',
    `<script>fetch('${b}/attachment')</script>`,
    `--${B}--`,
    '',
  ].join('\r\n');
}

async function signedInPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const popups = [];
  page.on('popup', (p) => popups.push(p.url()));
  await page.goto(base);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as web').waitFor();
  return { context, page, errors, dialogs, popups };
}

async function dropEml(page, text, name = 'hostile.eml') {
  await page.getByRole('tab', { name: 'Open message' }).click();
  const dt = await page.evaluateHandle(
    ({ text, name }) => {
      const d = new DataTransfer();
      d.items.add(new File([text], name, { type: 'message/rfc822' }));
      return d;
    },
    { text, name },
  );
  await page.dispatchEvent('#open-drop', 'drop', { dataTransfer: dt });
}

test('a hostile message opened in the page runs nothing and fetches nothing, also as a reply', async () => {
  hits.length = 0;
  const { context, page, errors, dialogs, popups } = await signedInPage();
  const title = await page.title();
  await dropEml(page, hostileEml(bait.url));
  await page.getByRole('heading', { name: /Hostile figures/ }).waitFor();

  // The preview: a sandboxed frame; its content is there, inert.
  const frameEl = await page.$('#opened-frame');
  assert.equal(await frameEl.getAttribute('sandbox'), '', 'the preview frame is sandboxed without exceptions');
  const frame = await frameEl.contentFrame();
  await frame.waitForLoadState('load');
  const preview = page.frameLocator('#opened-frame');
  await preview.getByText('Quarterly figures attached.').waitFor();
  assert.equal(await preview.locator('#m').textContent(), 'inert', 'no script ran in the preview');
  // Clicks a reader might make: a javascript: link, a data: link, a form button, the focusable div.
  await preview.locator('#jslink').click();
  await preview.locator('#go').click();
  await preview.locator('[tabindex="0"]').focus();
  assert.equal(await preview.locator('#m').textContent(), 'inert');
  assert.match(frame.url(), /^about:srcdoc$/, 'the preview frame did not navigate');
  // A data: link may replace the preview (a click is consent), but it stays
  // in the sandbox: its script does not run (checked with the fetches below).
  await preview.locator('#datalink').click();

  // The invitation and the attachment list: shown as text, nothing made of their markup.
  const inv = page.locator('#opened-invitation');
  await inv.getByText(/Budget/).waitFor();
  assert.equal(await inv.locator('img, script, iframe, a[href^="javascript"]').count(), 0, await inv.innerHTML());
  assert.equal(await page.locator('#opened-attachments img, #opened-headers img').count(), 0);
  // The hostile display name is shown as the text it is.
  await page.locator('#opened-headers').getByText(/<img src=x onerror=alert\(1\)>Eve/).waitFor();

  // Reply and forward as new: the HTML goes into the editor (in the page itself), cleaned.
  await page.getByRole('button', { name: 'Reply' }).click();
  const editor = page.getByRole('textbox', { name: 'Message' });
  await editor.getByText('Quarterly figures attached.').waitFor();
  const active = await editor.evaluate((root) => {
    const out = [];
    for (const el of root.querySelectorAll('script,iframe,frame,form,object,embed,meta,link,style,base,svg')) out.push(el.tagName);
    for (const el of root.querySelectorAll('*')) {
      for (const a of el.attributes) {
        if (/^on/i.test(a.name) || /^\s*(javascript|data:text)/i.test(a.value)) out.push(`${el.tagName} ${a.name}=${a.value}`);
      }
    }
    return out;
  });
  assert.deepEqual(active, [], `the editor keeps active content: ${await editor.innerHTML()}`);
  // The composer's own preview of that reply.
  const composePreview = await (await page.$('#preview-frame')).contentFrame();
  await composePreview.waitForLoadState('load');

  // Nothing ran anywhere, nothing was fetched, no dialog, no popup.
  assert.equal(await page.evaluate(() => window.PWNED), undefined, 'a script of the message ran in the page');
  assert.equal(await page.title(), title);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(popups, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(hits, [], `the page fetched what the hostile message references: ${hits.join(', ')}`);

  // Control: the bait server does count what a browser fetches from it.
  const control = await context.newPage();
  await control.goto(`${bait.url}/control`);
  assert.deepEqual(hits, ['GET /control']);
  await context.close();
});

test("the page's CSP, in Chromium: inline scripts and handlers, remote images, fetch and WebSocket elsewhere are blocked and reported", async () => {
  hits.length = 0;
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(base);
  const csp = response.headers()['content-security-policy'] ?? '';
  const directive = (name) => (csp.split(';').map((d) => d.trim()).find((d) => d.startsWith(`${name} `)) ?? '').split(/\s+/).slice(1);
  assert.deepEqual(directive('script-src'), ["'self'", "'wasm-unsafe-eval'"], csp);
  assert.deepEqual(directive('connect-src'), ["'self'"], csp);
  assert.deepEqual(directive('object-src'), ["'none'"], csp);
  assert.deepEqual(directive('frame-ancestors'), ["'none'"], csp);
  assert.deepEqual(directive('base-uri'), ["'none'"], csp);
  assert.ok(!directive('img-src').some((s) => /^https?:|\*/.test(s)), csp);

  const b = bait.url;
  await page.evaluate((b) => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
    const s = document.createElement('script');
    s.textContent = 'window.INLINE_RAN = 1';
    document.body.append(s);
    const holder = document.createElement('div');
    holder.innerHTML = `<img src="data:," onerror="window.HANDLER_RAN = 1"><img src="${b}/csp-img">`;
    document.body.append(holder);
    fetch(`${b}/csp-fetch`).catch(() => {});
    try {
      new WebSocket(`${b.replace('http', 'ws')}/csp-ws`);
    } catch {
      /* blocked synchronously */
    }
  }, b);
  await page.waitForFunction(() => window.violations.length >= 4, null, { timeout: 10_000 }).catch(async () => {
    assert.fail(`violations seen: ${JSON.stringify(await page.evaluate(() => window.violations))}`);
  });
  const seen = await page.evaluate(() => window.violations);
  for (const d of ['script-src-elem', 'script-src-attr', 'img-src', 'connect-src']) {
    assert.ok(seen.some((v) => v.startsWith(d)), `no ${d} violation in ${JSON.stringify(seen)}`);
  }
  assert.equal(await page.evaluate(() => window.INLINE_RAN), undefined);
  assert.equal(await page.evaluate(() => window.HANDLER_RAN), undefined);

  // frame-ancestors 'none': another site cannot frame the page (clickjacking).
  const host = await context.newPage();
  await host.goto(`${b}/frame-host`);
  const framed = await (await host.$('#f')).contentFrame();
  await framed.waitForLoadState('load').catch(() => {});
  assert.equal(await framed.locator('#compose').count(), 0, 'the page rendered inside a foreign frame');
  assert.deepEqual(hits, ['GET /frame-host'], `blocked requests reached the bait server: ${hits.join(', ')}`);
  await context.close();
});
