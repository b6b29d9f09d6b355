// The operator view (web/admin.html at /admin, issue 17) in a real browser:
// headless Chromium from Debian's `chromium` package driven by playwright-core
// (no browser download), the page built by scripts/build-web.sh and served by
// `postwire serve`, whose admin API (/admin/v1) it drives with an admin token
// made by `postwire admin-token add`. The upstream is the real SMTP test server
// (relay/tests/smtp_support/smtpd.py), which answers 451 to recipients whose
// address starts with "tempfail", so the message stays in the queue, deferred.
//
//   node --test tests/js/operator_view.test.mjs
//
// Needs what tests/js/web-browser.test.mjs needs (scripts/setup.sh and the
// postwire binary, POSTWIRE_BIN). Screenshots go to tests/out/web/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, webRequire } from './web-helpers.mjs';

process.env.POSTWIRE_VENV ??= path.join(ROOT, '.venv');
process.env.POSTWIRE_BIN ??= path.join(ROOT, 'target/debug/postwire');
const { startSmtpd, addToken, startRelay, WebSocket } = await import('../e2e/harness.mjs');
const { RelayClient } = await import('../../wasm/js/relay-client.js');

const CHROMIUM = '/usr/bin/chromium';
const BIN = process.env.POSTWIRE_BIN;
const OUT = path.join(ROOT, 'tests/out/web');
const WAIT = 20_000;
const RCPT = 'tempfail-opview@example.net';
const OTHER_RCPT = 'tempfail-other@example.net';

const tmp = mkdtempSync(path.join(tmpdir(), 'postwire-operator-view-'));
let browser;
let smtpd;
let relay;
let client;
let base;
let adminToken;
/** Why the test is skipped (the relay has no admin API), or null. */
let skipReason = null;

// axe-core evaluated into the page through the DevTools protocol (the page's
// CSP stays as it is), as in web-browser.test.mjs.
const AXE = readFileSync(webRequire.resolve('axe-core/axe.min.js'), 'utf8');

async function axeCheck(page, view) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(`${AXE}\n;0`);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(found, [], `axe-core on the operator view (${view})`);
}

/** `postwire admin-token add NAME`: its secret (the last line it prints), or null when the command fails. */
function addAdminToken(dataDir, name) {
  const r = spawnSync(BIN, ['admin-token', 'add', name, '--data-dir', dataDir], { encoding: 'utf8' });
  if (r.status !== 0) return { secret: null, error: (r.stderr || r.stdout || '').trim() };
  const lines = r.stdout.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  return { secret: lines[lines.length - 1] ?? null, error: null };
}

function message(subject, to) {
  return [
    'From: Ops Test <ops@example.com>',
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${subject}@example.com>`,
    'Date: Sat, 05 Dec 2026 03:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This is ${subject}.`,
    '',
  ].join('\r\n');
}

/** Rejects when `promise` has not settled within WAIT ms (a broken relay fails the test instead of hanging it). */
function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${WAIT} ms\n${relay?.log() ?? ''}`)), WAIT);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Submits one message and waits until its first attempt was deferred (the smtpd's 451). */
async function submitDeferred(subject, to) {
  const sent = await within(client.send(message(subject, to), { envelope: { mailFrom: 'ops@example.com', rcptTo: [to] } }), `${subject} accepted`);
  await within(new Promise((resolve) => sent.on('deferred', resolve)), `${subject} deferred`);
  return sent;
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)`);
  assert.ok(existsSync(BIN), `postwire binary ${BIN} is missing: cargo build -p postwire-relay --bin postwire, or set POSTWIRE_BIN`);

  const dist = path.join(tmp, 'dist');
  execFileSync('bash', [path.join(ROOT, 'scripts/build-web.sh')], { env: { ...process.env, POSTWIRE_WEB_OUT: dist }, stdio: 'inherit' });
  assert.ok(existsSync(path.join(dist, 'admin.html')), 'the build made no admin.html');

  smtpd = await startSmtpd(mkdtempSync(path.join(tmp, 'smtp-')));
  const data = path.join(tmp, 'data');
  const appToken = addToken(data, 'app', ['@example.com']);
  const admin = addAdminToken(data, 'ops');
  relay = await startRelay({ dataDir: data, smtpd, env: { POSTWIRE_WEB_DIR: dist, POSTWIRE_LOG: 'warn' } });
  base = relay.http;

  // Skipped only in a build without the admin API (no admin-token command,
  // and /admin/v1/summary unknown); a relay that has admin tokens must answer.
  const probe = await fetch(`${base}/admin/v1/summary`);
  if (probe.status === 404 && !admin.secret) {
    skipReason = `the relay answers 404 at /admin/v1/summary: no admin API in this build (admin-token add: ${admin.error ?? 'ok'})`;
    return;
  }
  assert.ok(admin.secret, `postwire admin-token add failed: ${admin.error}`);
  assert.equal(probe.status, 401, 'the admin API refuses a request without a token');
  adminToken = admin.secret;

  client = new RelayClient(relay.url, { token: appToken, WebSocket });
  await submitDeferred('opview-1', RCPT);
  await submitDeferred('opview-2', OTHER_RCPT);

  const { chromium } = webRequire('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  client?.close();
  await browser?.close();
  await relay?.kill('SIGTERM');
  smtpd?.stop();
});

test('the operator view: sign in, the queue live, filters, history, hold/release/cancel/delete, charts', async (t) => {
  if (skipReason) {
    console.log(`# operator view test skipped: ${skipReason}`);
    t.skip(skipReason);
    return;
  }
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A refused sign-in is an expected 401 the browser logs as a failed load.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  const authHeaders = [];
  page.on('request', (r) => {
    if (r.url().includes('/admin/v1/')) authHeaders.push(r.headers().authorization ?? '');
  });

  const resp = await page.goto(`${base}/admin`);
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()['content-security-policy'] ?? '', /connect-src 'self'/);
  await axeCheck(page, 'signed out');

  // A wrong token: an error, nothing stored, the queue stays hidden.
  await page.getByLabel('Admin token', { exact: true }).fill('pwa_not-a-real-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  assert.equal(await page.locator('#app').isHidden(), true);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  // The right token, by keyboard: kept in sessionStorage only, sent as a Bearer header.
  await page.getByLabel('Admin token', { exact: true }).fill(adminToken);
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: /^Signed in$/ }).waitFor();
  assert.deepEqual(
    await page.evaluate(() => [Object.values(sessionStorage), localStorage.length]),
    [[adminToken], 0],
  );
  const queue = page.locator('#queue tbody');
  await queue.getByText(RCPT).waitFor();
  await queue.getByText(OTHER_RCPT).waitFor();
  assert.ok(authHeaders.includes(`Bearer ${adminToken}`), 'the admin token goes in Authorization: Bearer');

  // Filters: by recipient, then a sender nobody used, then cleared.
  await page.getByLabel('Recipient', { exact: true }).fill(RCPT);
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await queue.getByText(OTHER_RCPT).waitFor({ state: 'detached' });
  assert.equal(await queue.locator('tr').count(), 1);
  await page.getByLabel('Sender', { exact: true }).fill('nobody@example.org');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await queue.getByText('No messages match.').waitFor();
  await page.getByLabel('Sender', { exact: true }).fill('ops@example.com');
  await page.getByLabel('Since', { exact: true }).fill('2999-01-01T00:00');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await queue.getByText('No messages match.').waitFor();
  await page.getByLabel('Since', { exact: true }).fill('2000-01-01T00:00');
  await page.getByLabel('State', { exact: true }).selectOption('queued');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await queue.getByText(RCPT).waitFor();
  assert.equal(await queue.locator('tr').count(), 1);

  // One message's history: headers, the recipient's deferral with the reply text.
  await queue.getByRole('button', { name: /^Open message / }).click();
  const detail = page.locator('#detail');
  await detail.waitFor();
  await detail.locator('#detail-headers').getByText('opview-1', { exact: true }).waitFor();
  await detail.getByRole('table', { name: `History of ${RCPT}` }).getByText(/try again later/).first().waitFor();
  await axeCheck(page, 'a message open');
  await page.screenshot({ path: path.join(OUT, 'operator-view.png'), fullPage: true });

  // Hold, then release.
  const meta = page.locator('#detail-meta');
  await page.getByRole('button', { name: 'Hold', exact: true }).click();
  await page.getByRole('status').filter({ hasText: /^Held/ }).waitFor();
  await meta.locator('.badge', { hasText: /^held$/ }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Release', exact: true }).isEnabled(), true);
  await page.getByRole('button', { name: 'Release', exact: true }).click();
  await page.getByRole('status').filter({ hasText: /^Released/ }).waitFor();
  await meta.locator('.badge', { hasText: /^held$/ }).waitFor({ state: 'detached' });

  // Retry now: another attempt at once, deferred again (a second 451 in the history).
  await page.getByRole('button', { name: 'Retry now', exact: true }).click();
  await page.getByRole('status').filter({ hasText: /^Retry scheduled/ }).waitFor();
  await detail.getByText(/Attempts: 2 /).waitFor();

  // Cancel asks first; keeping the message changes nothing.
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await axeCheck(page, 'the confirmation');
  await dialog.getByRole('button', { name: 'Keep the message' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await meta.locator('.badge', { hasText: /^failed$/ }).count(), 0);
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await dialog.getByRole('button', { name: 'Cancel the message' }).click();
  await meta.locator('.badge', { hasText: /^failed$/ }).waitFor();
  await detail.getByText(/cancelled by operator/).first().waitFor();

  // The charts: an SVG line with points once a few polls have sampled /metrics.
  await page.waitForFunction(() => {
    const pts = (id) => (document.querySelector(`#chart-${id} polyline`)?.getAttribute('points') ?? '').trim().split(/\s+/).filter(Boolean).length;
    return pts('postwire_accepted_total') >= 2 && pts('postwire_deferred_total') >= 2 && pts('postwire_queue_depth') >= 2;
  }, null, { timeout: WAIT });
  assert.equal(await page.locator('#charts svg[role=img]').count(), 5);
  assert.match(await page.locator('#chart-postwire_accepted_total figcaption').textContent(), /Accepted per minute/);

  // Delete asks too; afterwards the message is gone from the list.
  await page.getByLabel('State', { exact: true }).selectOption('');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await dialog.getByRole('button', { name: 'Delete the message' }).click();
  await page.getByRole('status').filter({ hasText: /^Deleted/ }).waitFor();
  await queue.getByText('No messages match.').waitFor();

  // Signing out forgets the token.
  await page.getByRole('button', { name: 'Sign out' }).click();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(errors, []);
  await context.close();
});
