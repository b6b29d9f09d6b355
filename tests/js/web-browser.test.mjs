// The composer page in a real browser (issue 8): headless Chromium from
// Debian's `chromium` package driven by playwright-core (no browser download),
// the page built by Vite and served by `postwire serve`, which delivers to the
// real SMTP test server of the SMTP tests (relay/tests/smtp_support/smtpd.py,
// aiosmtpd with STARTTLS + AUTH). What arrives is judged by Python's email and
// icalendar packages (tests/js/web_judge.py), not by postwire.
//
//   node --test tests/js/web-browser.test.mjs
//
// Needs: scripts/setup.sh (chromium, web/node_modules, the venv with aiosmtpd
// and icalendar) and the postwire binary (POSTWIRE_BIN, default
// target/debug/postwire). Anything missing fails the test; nothing is skipped.
// Screenshots go to tests/out/web/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, webRequire } from './web-helpers.mjs';

process.env.POSTWIRE_VENV ??= path.join(ROOT, '.venv');
process.env.POSTWIRE_BIN ??= path.join(ROOT, 'target/debug/postwire');
// The relay's end-to-end harness starts the SMTP test server and the relay the
// same way for both suites.
const { startSmtpd, addToken, startRelay } = await import('../e2e/harness.mjs');

const CHROMIUM = '/usr/bin/chromium';
const BIN = process.env.POSTWIRE_BIN;
const PY = path.join(process.env.POSTWIRE_VENV, 'bin/python');
const JUDGE = path.join(ROOT, 'tests/js/web_judge.py');
const OUT = path.join(ROOT, 'tests/out/web');
const WAIT = 60_000;

const tmp = mkdtempSync(path.join(tmpdir(), 'postwire-web-browser-'));
let browser;
let base;
let smtpd;
let relay;
let smtpOut;
const tokens = {};

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Messages the SMTP server received: [{ name, envelope, bytes, file }], oldest first. */
function received() {
  if (!existsSync(smtpOut)) return [];
  return readdirSync(smtpOut)
    .filter((n) => n.endsWith('.eml'))
    .sort()
    .map((n) => {
      const file = path.join(smtpOut, n);
      return { name: n, file, bytes: readFileSync(file), envelope: JSON.parse(readFileSync(file.replace(/\.eml$/, '.json'), 'utf8')) };
    });
}

/** Waits until the SMTP server has at least `n` messages more than `since`; returns the new ones. */
async function waitForMessages(since, n) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const all = received();
    if (all.length >= since + n) return all.slice(since);
    if (Date.now() > deadline) throw new Error(`the SMTP server got ${all.length - since} of ${n} messages`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function judge(file) {
  return JSON.parse(run(PY, [JUDGE, file]));
}

/** A fresh page that records console errors and uncaught exceptions. */
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(base);
  // The page's module (and its wasm) has run and attached its handlers.
  await page.locator('html[data-ready="true"]').waitFor({ state: 'attached' });
  return { page, errors, context };
}

async function signIn(page, token) {
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function addChips(page, label, list) {
  const input = page.getByLabel(label, { exact: true });
  for (const a of list) {
    await input.fill(a);
    await input.press('Enter');
  }
}

// axe-core (web/'s devDependency), evaluated into the page through the
// DevTools protocol: the page's CSP stays as it is.
const AXE = readFileSync(webRequire.resolve('axe-core/axe.min.js'), 'utf8');
const axeChecked = new Set();

/** Runs axe-core on the page as it is; fails on any serious or critical finding. */
async function axeCheck(page, view) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(`${AXE}\n;0`);
  const found = await page.evaluate(async () => {
    // The previews are sandboxed frames with no scripts: axe checks the page itself.
    const r = await window.axe.run(document, { iframes: false, resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(found, [], `axe-core on the ${view} view`);
  axeChecked.add(view);
}

function shot(page, name) {
  return page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)`);
  assert.ok(existsSync(BIN), `postwire binary ${BIN} is missing: cargo build -p postwire-relay --bin postwire, or set POSTWIRE_BIN`);
  assert.ok(existsSync(PY), `no Python venv at ${process.env.POSTWIRE_VENV}: run scripts/setup.sh`);
  const { chromium } = webRequire('playwright-core');

  // The page, built the way scripts/build-web.sh builds it, into a temp folder.
  const dist = path.join(tmp, 'dist');
  run('bash', [path.join(ROOT, 'scripts/build-web.sh')], { env: { ...process.env, POSTWIRE_WEB_OUT: dist }, stdio: 'inherit' });
  assert.ok(existsSync(path.join(dist, 'index.html')), 'vite build made no index.html');

  // The real SMTP test server (STARTTLS + AUTH required) and the relay in
  // front of it, serving the page from the build above; three tokens.
  smtpd = await startSmtpd(mkdtempSync(path.join(tmp, 'smtp-')));
  smtpOut = smtpd.out;
  const data = path.join(tmp, 'data');
  tokens.web = addToken(data, 'web', ['@example.com']);
  tokens.other = addToken(data, 'other', ['@other.example']);
  tokens.small = addToken(data, 'small', ['@example.com'], ['--max-size', '4000']);
  relay = await startRelay({ dataDir: data, smtpd, env: { POSTWIRE_WEB_DIR: dist, POSTWIRE_LOG: 'warn' } });
  base = `${relay.http}/`;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await relay?.kill('SIGTERM');
  smtpd?.stop();
});

// A small PNG (1x1, red) for the pasted inline image.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
  'base64',
);

test('every control has a visible label or name, and the page loads without errors', async () => {
  const { page, errors, context } = await newPage();
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input, select, textarea, button, [contenteditable=true]')) {
      if (el.closest('[hidden]') && !['meeting-fields'].some((id) => el.closest(`#${id}`))) continue;
      const named =
        (el.labels && el.labels.length > 0 && [...el.labels].some((l) => l.textContent.trim())) ||
        el.getAttribute('aria-label') ||
        (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))?.textContent.trim()) ||
        (el.tagName === 'BUTTON' && el.textContent.trim());
      if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
  assert.deepEqual(unnamed, []);
  for (const label of ['Token', 'From', 'To', 'Cc', 'Bcc', 'Subject', 'Attachments']) {
    assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, label);
  }
  assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).count(), 1);
  await axeCheck(page, 'compose (signed out)');
  await shot(page, 'signed-out');
  // Keyboard: a chip made with Enter and removed with its button, by keys only.
  await page.getByLabel('To', { exact: true }).focus();
  await page.keyboard.type('kb@example.org');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('.chip').count(), 1);
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove kb@example.org from To');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('.chip').count(), 0);
  // Tabs move with the arrow keys.
  await page.getByRole('tab', { name: 'Compose' }).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', { name: 'Open message' }).getAttribute('aria-selected'), 'true');
  await axeCheck(page, 'open (nothing opened)');
  await page.keyboard.press('ArrowRight');
  await axeCheck(page, 'bulk (no CSV)');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the token is kept for the tab only (sessionStorage): a reload stays signed in, Sign out forgets it', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('postwire.token')), tokens.web);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  assert.equal(await page.getByLabel('Token', { exact: true }).inputValue(), '', 'the field is cleared after sign-in');
  await page.reload();
  await page.getByText('Signed in as web').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('Signed out').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('postwire.token')), null);
  // A new tab (a new browsing context) starts signed out.
  const other = await context.browser().newContext();
  const p2 = await other.newPage();
  await p2.goto(base);
  await p2.getByText('Not signed in').waitFor();
  await other.close();
  assert.deepEqual(errors, []);
  await context.close();
});

test('compose with an attachment, an inline image and a meeting request; send; the SMTP server gets the right structure', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  const subject = `Quarterly plan ${Date.now()}`;
  await page.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org']);
  await addChips(page, 'Cc', ['Carl Ruiz <carl@example.net>']);
  await addChips(page, 'Bcc', ['secret@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  const editor = page.getByRole('textbox', { name: 'Message' });
  await editor.click();
  await page.keyboard.type('Hello Bob,');
  await page.keyboard.press('Enter');
  await page.keyboard.type('here are the ');
  await page.keyboard.press('Control+b');
  await page.keyboard.type('bold words');
  await page.keyboard.press('Control+b');
  await page.keyboard.type(' and a picture: ');
  // Paste an image: it becomes an inline Content-ID part.
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    document.getElementById('editor').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, PNG.toString('base64'));
  await page.locator('#editor img').waitFor();
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(30_000, 7), Buffer.from('\n%%EOF\n')]);
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'plan.pdf', mimeType: 'application/pdf', buffer: pdf });
  await page.getByText('plan.pdf').waitFor();
  await page.getByLabel('Meeting request').check();
  await page.getByLabel('Start', { exact: true }).fill('2026-12-01T10:00');
  await page.getByLabel('End', { exact: true }).fill('2026-12-01T11:30');
  await page.getByLabel('Time zone', { exact: true }).fill('Europe/Madrid');
  await page.getByLabel('Location', { exact: true }).fill('Room 4');
  await addChips(page, 'Attendees', ['bob@example.org', 'Carl Ruiz <carl@example.net>']);

  // The preview: rendered, raw, and the size.
  await page.getByText(/^Size: .*\(\d+ bytes\)$/).waitFor();
  await page.waitForFunction(() => /bold words/.test(document.getElementById('raw-eml').value));
  const frame = page.frameLocator('#preview-frame');
  await frame.getByText('bold words').waitFor();
  assert.equal(await frame.locator('img').evaluate((i) => i.naturalWidth), 1, 'the inline image shows in the preview');
  assert.equal(await page.locator('#preview-error').textContent(), '');
  await shot(page, 'compose');
  await axeCheck(page, 'compose');
  await page.getByRole('button', { name: 'Raw .eml' }).click();
  const raw = await page.locator('#raw-eml').inputValue();
  assert.ok(/^Content-Type: multipart\//im.test(raw), 'the raw view shows a multipart message');
  assert.ok(/^Content-Type: text\/calendar/im.test(raw), 'the raw view shows the text/calendar part');
  await shot(page, 'compose-raw');
  await axeCheck(page, 'raw .eml');

  const before = received().length;
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  for (const r of ['bob@example.org', 'carl@example.net', 'secret@example.org']) {
    await page.locator(`#rcpt-table tr[data-rcpt="${r}"] td.state[data-state=delivered]`).waitFor({ timeout: WAIT });
  }
  await page.getByText(/Done: 3 delivered, 0 failed/).waitFor();
  assert.equal(await page.locator('#send-progress').evaluate((p) => p.value), 1);
  await shot(page, 'sent');
  await axeCheck(page, 'sent');

  const [msg] = await waitForMessages(before, 1);
  assert.equal(msg.envelope.mailFrom, 'ann@example.com');
  assert.deepEqual([...msg.envelope.rcptTo].sort(), ['bob@example.org', 'carl@example.net', 'secret@example.org']);
  const j = judge(msg.file);
  assert.deepEqual(j.defects, []);
  assert.equal(j.subject, subject);
  assert.match(j.from, /Ann Sender <ann@example\.com>/);
  assert.match(j.to, /bob@example\.org/);
  assert.match(j.cc, /Carl Ruiz <carl@example\.net>/);
  assert.equal(j.bcc_header, false, 'Bcc must not be in the headers');
  const plain = j.parts.find((p) => p.type === 'text/plain');
  const html = j.parts.find((p) => p.type === 'text/html');
  assert.ok(plain && html, `text and HTML alternatives: ${j.structure}`);
  assert.ok(j.structure.includes('multipart/alternative'), j.structure.join(' '));
  assert.match(plain.text, /Hello Bob,\s*\n\s*here are the bold words and a picture:/);
  assert.match(html.text, /<(b|strong)>bold words<\/(b|strong)>/);
  const att = j.parts.find((p) => p.filename === 'plan.pdf');
  assert.ok(att, 'plan.pdf attached');
  assert.equal(att.type, 'application/pdf');
  assert.equal(att.disposition, 'attachment');
  assert.equal(att.size, pdf.length);
  assert.equal(att.hex, pdf.subarray(0, 64).toString('hex'));
  const img = j.parts.find((p) => p.type === 'image/png');
  assert.ok(img && img.cid, 'the pasted image is a part with a Content-ID');
  assert.equal(img.size, PNG.length);
  const cid = img.cid.replace(/^<|>$/g, '');
  assert.ok(html.text.includes(`cid:${cid}`), 'the HTML refers to the inline image by cid');
  assert.ok(j.structure.includes('multipart/related'), j.structure.join(' '));
  const cal = j.parts.find((p) => p.type === 'text/calendar');
  assert.ok(cal, `a text/calendar part: ${j.structure}`);
  assert.equal(cal.calendar.method, 'REQUEST');
  const [ev] = cal.calendar.events;
  assert.equal(ev.summary, subject);
  assert.equal(ev.location, 'Room 4');
  assert.equal(ev.start_utc, '2026-12-01T09:00:00+00:00', `10:00 in Madrid: ${JSON.stringify(ev)}`);
  assert.equal(ev.end_utc, '2026-12-01T10:30:00+00:00');
  assert.match(ev.organizer, /mailto:ann@example\.com/i);
  assert.deepEqual(ev.attendees.map((a) => a.toLowerCase()).sort(), ['mailto:bob@example.org', 'mailto:carl@example.net']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a meeting request invites To (required) and Cc (optional), From organises, in the browser\'s zone from the next full hour', async () => {
  const { page, errors, context } = await newPage({ timezoneId: 'America/New_York' });
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org', 'dora@example.org']);
  await addChips(page, 'Cc', ['Carl Ruiz <carl@example.net>']);
  const subject = `Planning ${Date.now()}`;
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  await page.getByLabel('Meeting request').check();
  // Invited without typing them again, To as required and Cc as optional.
  const attendees = page.locator('#meeting-fields .chip');
  await attendees.filter({ hasText: 'carl@example.net' }).waitFor();
  assert.equal(await attendees.count(), 3);
  const role = (email) => page.getByLabel(`${email}: required or optional`);
  assert.equal(await role('bob@example.org').inputValue(), 'REQ-PARTICIPANT');
  assert.equal(await role('dora@example.org').inputValue(), 'REQ-PARTICIPANT');
  assert.equal(await role('carl@example.net').inputValue(), 'OPT-PARTICIPANT');
  assert.match(await page.locator('#organizer').textContent(), /Ann Sender <ann@example\.com>/);
  // The browser's own zone, and the next full hour for an hour.
  assert.equal(await page.getByLabel('Time zone', { exact: true }).inputValue(), 'America/New_York');
  const start = await page.getByLabel('Start', { exact: true }).inputValue();
  const end = await page.getByLabel('End', { exact: true }).inputValue();
  const { next, prev } = await page.evaluate(() => {
    const f = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}T${String(d.getHours()).padStart(2, '0')}:00`;
    const d = new Date();
    d.setMinutes(0, 0, 0);
    const prev = f(d);
    d.setHours(d.getHours() + 1);
    return { next: f(d), prev };
  });
  assert.ok(start === next || start === prev, `start ${start} is the next full hour (${next}; ${prev} when the hour just turned)`);
  assert.equal(Date.parse(`${end}:00Z`) - Date.parse(`${start}:00Z`), 3_600_000, `end ${end} is an hour after ${start}`);
  // Editable: dora uninvited (she stays in To), carl made required, eve typed in as optional,
  // and a Cc added later (fay) follows as optional.
  await page.getByRole('button', { name: 'Remove dora@example.org from Attendees' }).click();
  await role('carl@example.net').selectOption('REQ-PARTICIPANT');
  await addChips(page, 'Attendees', ['eve@example.org']);
  await role('eve@example.org').selectOption('OPT-PARTICIPANT');
  await addChips(page, 'Cc', ['fay@example.com']);
  await attendees.filter({ hasText: 'fay@example.com' }).waitFor();
  assert.equal(await role('fay@example.com').inputValue(), 'OPT-PARTICIPANT');
  assert.equal(await attendees.filter({ hasText: 'dora@example.org' }).count(), 0, 'a removed attendee is not invited again');
  await page.waitForFunction(() => /fay@example\.com/i.test(document.getElementById('raw-eml').value), null, { timeout: 5000 }).catch(async (e) => {
    throw new Error(`${e.message}\n${await page.locator('#preview-error').textContent()}\n${await page.locator('#raw-eml').inputValue()}`);
  });
  assert.equal(await page.locator('#preview-error').textContent(), '');
  await shot(page, 'meeting');
  await axeCheck(page, 'meeting request');

  const before = received().length;
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText(/Done: 4 delivered, 0 failed/).waitFor({ timeout: WAIT });
  const [msg] = await waitForMessages(before, 1);
  assert.deepEqual([...msg.envelope.rcptTo].sort(), ['bob@example.org', 'carl@example.net', 'dora@example.org', 'fay@example.com']);
  const j = judge(msg.file);
  const cal = j.parts.find((p) => p.type === 'text/calendar');
  assert.ok(cal, `a text/calendar part: ${j.structure}`);
  const [ev] = cal.calendar.events;
  assert.deepEqual(ev.attendee_roles, {
    'bob@example.org': 'REQ-PARTICIPANT',
    'carl@example.net': 'REQ-PARTICIPANT',
    'eve@example.org': 'OPT-PARTICIPANT',
    'fay@example.com': 'OPT-PARTICIPANT',
  });
  assert.match(ev.organizer, /mailto:ann@example\.com/i);
  assert.equal(ev.tzid, 'America/New_York');
  assert.equal(ev.start.slice(0, 16), start);
  assert.equal(ev.end.slice(0, 16), end);
  assert.equal(ev.summary, subject);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the preview shows the fields as they are, also after sending a message with an attachment', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await addChips(page, 'To', ['bob@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill('Before sending');
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('With a file.');
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') });
  await page.locator('#attachment-list').getByText('notes.txt').waitFor();
  // Without From: the body and the size are shown, and the preview says what is missing.
  await page.getByText('Fill in From to see the message as it will be sent.').waitFor();
  await page.frameLocator('#preview-frame').getByText('With a file.').waitFor();
  await page.frameLocator('#preview-frame').getByText('notes.txt').waitFor();
  // From filled the way a browser puts a value back (form restore, autofill
  // of some kinds): no input event. Then Send.
  await page.evaluate(() => {
    document.getElementById('from').value = 'Ann Sender <ann@example.com>';
  });
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText(/Done: 1 delivered, 0 failed/).waitFor({ timeout: WAIT });
  // After the send: the preview is the message as it stands, not a complaint about From.
  await page.waitForFunction(() => /^Subject: Before sending/m.test(document.getElementById('raw-eml').value));
  assert.equal(await page.locator('#preview-error').textContent(), '');
  assert.match(await page.locator('#eml-size').textContent(), /^Size: .*\(\d+ bytes\)/);
  await page.frameLocator('#preview-frame').getByText('With a file.').waitFor();
  // And it follows every later change.
  await page.getByLabel('Subject', { exact: true }).fill('After sending');
  await page.waitForFunction(() => /^Subject: After sending/m.test(document.getElementById('raw-eml').value));
  await page.getByRole('button', { name: 'Remove attachment notes.txt' }).click();
  await page.waitForFunction(() => !/notes\.txt/.test(document.getElementById('raw-eml').value));
  assert.equal(await page.locator('#preview-error').textContent(), '');
  // Emptied From: the preview says so; filled again: the message is back.
  await page.getByLabel('From', { exact: true }).fill('');
  await page.getByText('Fill in From to see the message as it will be sent.').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await page.waitForFunction(() => document.getElementById('preview-error').textContent === '');
  await page.waitForFunction(() => /^From: .*ann@example\.com/m.test(document.getElementById('raw-eml').value));
  // A pause while typing an address: the preview is rebuilt, the half-typed
  // address stays in the field (it is not made a chip behind the person's back).
  const builds = Number(await page.locator('#eml-size').getAttribute('data-builds'));
  await page.getByLabel('Cc', { exact: true }).click();
  await page.keyboard.type('carl@exa');
  await page.waitForFunction((b) => Number(document.getElementById('eml-size').dataset.builds) > b, builds);
  assert.equal(await page.getByLabel('Cc', { exact: true }).inputValue(), 'carl@exa');
  assert.equal(await page.locator('#compose .chip', { hasText: 'carl@exa' }).count(), 0);
  await page.keyboard.type('mple.net');
  await page.keyboard.press('Enter');
  await page.locator('#compose .chip', { hasText: 'carl@example.net' }).waitFor();
  await page.waitForFunction(() => /^Cc: .*carl@example\.net/m.test(document.getElementById('raw-eml').value));
  await shot(page, 'preview-after-send');
  await axeCheck(page, 'preview after a send');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the size as sent grows as files are added; over the token\'s limit Send is disabled with the reason; an oversize file says so at once', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.small); // --max-size 4000
  await page.getByText('Signed in as small').waitFor();
  await page.getByText('This token may send up to 3.9 KB a message.').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org']);
  const subject = `Near the limit ${Date.now()}`;
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  const sizeNow = async () => Number(/\((\d+) bytes\)/.exec(await page.locator('#eml-size').textContent())?.[1]);
  await page.waitForFunction((s) => document.getElementById('raw-eml').value.includes(s), subject);
  const bare = await sizeNow();
  const send = page.getByRole('button', { name: 'Send', exact: true });
  assert.equal(await send.isDisabled(), false);
  // 1200 bytes of file: about 1600 once base64-encoded, and the size says so.
  const a = Buffer.from(Array.from({ length: 1200 }, (_, i) => (i * 7) % 256));
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'a.bin', mimeType: 'application/octet-stream', buffer: a });
  await page.waitForFunction((b) => Number(/\((\d+) bytes\)/.exec(document.getElementById('eml-size').textContent)?.[1]) > b + 1600, bare);
  const withA = await sizeNow();
  assert.ok(withA < 4000, `${withA} bytes fit`);
  assert.equal(await send.isDisabled(), false);
  // A second file takes it over the limit: Send is disabled, and says why.
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'b.bin', mimeType: 'application/octet-stream', buffer: a });
  await page.getByText(/^Too large to send: the message is [\d.]+ KB as sent .* over this token's limit of 3\.9 KB/).waitFor();
  assert.equal(await send.isDisabled(), true);
  assert.equal(await send.getAttribute('aria-describedby'), 'size-limit');
  assert.ok((await sizeNow()) > 4000);
  await shot(page, 'size-limit');
  await axeCheck(page, 'size limit');
  // Removing it makes room again.
  await page.getByRole('button', { name: 'Remove attachment b.bin' }).click();
  await page.waitForFunction(() => document.getElementById('size-limit').textContent === '');
  assert.equal(await send.isDisabled(), false);
  assert.equal(await sizeNow(), withA);
  // A file too large on its own is refused as it is dropped.
  const dt = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File([new Uint8Array(10_000)], 'huge.bin', { type: 'application/octet-stream' }));
    return d;
  });
  await page.dispatchEvent('#compose', 'drop', { dataTransfer: dt });
  await page.getByText(/^huge\.bin was not attached: it is 9\.8 KB, about 13\.[0-9] KB once encoded for mail, and this token may send up to 3\.9 KB a message\.$/).waitFor();
  assert.equal(await page.locator('#attachment-list li').count(), 1);
  // What fits is sent, and arrives whole.
  const before = received().length;
  await send.click();
  await page.getByText(/Done: 1 delivered, 0 failed/).waitFor({ timeout: WAIT });
  const [msg] = await waitForMessages(before, 1);
  const j = judge(msg.file);
  assert.equal(j.subject, subject);
  assert.equal(j.parts.find((p) => p.filename === 'a.bin')?.size, a.length);
  assert.ok(Math.abs(j.size - withA) < 200, `sent ${j.size} bytes, the page said ${withA}`);
  assert.deepEqual(errors, []);
  await context.close();
});

/**
 * The drafts kept in the page's IndexedDB, as JSON text ('' when the store
 * does not exist); byte arrays (attachments are kept as the file's bytes)
 * appear as `Uint8Array:<base64>`.
 */
function storedDrafts(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open('postwire');
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const db = req.result;
          if (!db.objectStoreNames.contains('drafts')) {
            db.close();
            return resolve('');
          }
          const all = db.transaction('drafts').objectStore('drafts').getAll();
          all.onsuccess = () => {
            db.close();
            const bytes = (_k, v) => (v instanceof Uint8Array ? `Uint8Array:${btoa(Array.from(v, (b) => String.fromCharCode(b)).join(''))}` : v);
            resolve(all.result.length ? JSON.stringify(all.result, bytes) : '');
          };
          all.onerror = () => reject(all.error);
        };
      }),
  );
}

test('a draft survives a reload and a closed tab (IndexedDB, never the token); Discard draft and a send remove it', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  const subject = `Long letter ${Date.now()}`;
  await page.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org']);
  await addChips(page, 'Cc', ['Carl Ruiz <carl@example.net>']);
  await addChips(page, 'Bcc', ['secret@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('Dear Bob, this took a while to write.');
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    document.getElementById('editor').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, PNG.toString('base64'));
  await page.locator('#editor img').waitFor();
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('kept in the draft\n') });
  await page.locator('#attachment-list').getByText('notes.txt').waitFor();
  await page.getByLabel('Meeting request').check();
  await page.getByLabel('Location', { exact: true }).fill('Room 7');
  await page.locator('#draft-status[data-state=saved]').waitFor();
  assert.match(await page.locator('#draft-status').textContent(), /^Draft saved at /);
  const stored = await storedDrafts(page);
  for (const s of [subject, 'Room 7', 'secret@example.org', `Uint8Array:${Buffer.from('kept in the draft\n').toString('base64')}`]) assert.ok(stored.includes(s), `the draft holds ${s}`);
  assert.ok(!stored.includes(tokens.web), 'the token is not in the draft');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  const checkRestored = async (p) => {
    await p.getByText(/^Draft restored, saved /).waitFor();
    assert.equal(await p.getByLabel('Subject', { exact: true }).inputValue(), subject);
    assert.equal(await p.getByLabel('From', { exact: true }).inputValue(), 'Ann Sender <ann@example.com>');
    for (const c of ['bob@example.org', 'Carl Ruiz <carl@example.net>', 'secret@example.org']) await p.locator('#compose .chip', { hasText: c }).first().waitFor();
    await p.getByRole('textbox', { name: 'Message' }).getByText('Dear Bob, this took a while to write.').waitFor();
    await p.waitForFunction(() => document.querySelector('#editor img')?.naturalWidth === 1); // the inline image is back
    await p.waitForFunction(() => /^Content-Type: image\/png/im.test(document.getElementById('raw-eml').value));
    await p.locator('#attachment-list').getByText('notes.txt').waitFor();
    assert.equal(await p.getByLabel('Meeting request').isChecked(), true);
    assert.equal(await p.getByLabel('Location', { exact: true }).inputValue(), 'Room 7');
    await p.waitForFunction((s) => document.getElementById('raw-eml').value.includes(s), subject);
    assert.equal(await p.locator('#preview-error').textContent(), '');
  };
  await page.reload();
  await checkRestored(page);
  await page.getByText('Signed in as web').waitFor();
  await shot(page, 'draft-restored');
  await axeCheck(page, 'restored draft');

  // A closed tab: a new one has the draft, but not the token (it went with the tab).
  await page.close();
  const p2 = await context.newPage();
  p2.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  p2.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await p2.goto(base);
  await checkRestored(p2);
  await p2.getByText('Not signed in').waitFor();

  // Discard draft: the composer empties and nothing is kept.
  await p2.getByRole('button', { name: 'Discard draft' }).click();
  await p2.getByText('Draft discarded').waitFor();
  assert.equal(await p2.getByLabel('Subject', { exact: true }).inputValue(), '');
  assert.equal(await p2.locator('#compose .chip').count(), 0);
  assert.equal(await p2.locator('#attachment-list li').count(), 0);
  assert.equal(await storedDrafts(p2), '');
  await p2.reload();
  await p2.locator('#draft-status[data-restore=done]').waitFor({ state: 'attached' });
  assert.equal(await p2.getByLabel('Subject', { exact: true }).inputValue(), '');

  // A sent message leaves no draft behind.
  await signIn(p2, tokens.web);
  await p2.getByText('Signed in as web').waitFor();
  await p2.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await addChips(p2, 'To', ['bob@example.org']);
  await p2.getByLabel('Subject', { exact: true }).fill(`${subject} (sent)`);
  await p2.locator('#draft-status[data-state=saved]').waitFor();
  assert.ok((await storedDrafts(p2)).includes(`${subject} (sent)`));
  await p2.getByRole('button', { name: 'Send', exact: true }).click();
  await p2.getByText(/Done: 1 delivered, 0 failed/).waitFor({ timeout: WAIT });
  await p2.getByText('Sent: the draft was deleted.').waitFor();
  assert.equal(await storedDrafts(p2), '');
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard alone: sign in, tab through the composer, send; Ctrl+Enter sends again', async () => {
  const { page, errors, context } = await newPage();
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return el?.id || el?.getAttribute('aria-label') || el?.textContent?.trim() || el?.tagName || '';
  });
  /** Presses Tab (or Shift+Tab) until `id` has the focus; returns what was passed on the way. */
  const tabTo = async (id, back = false, max = 25) => {
    const path = [];
    for (let i = 0; i < max; i++) {
      await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
      const f = await focused();
      path.push(f);
      if (f === id) return path;
    }
    throw new Error(`${id} not reached by ${back ? 'Shift+Tab' : 'Tab'}: ${path.join(' > ')}`);
  };
  await tabTo('token');
  await page.keyboard.type(tokens.web);
  await page.keyboard.press('Enter');
  await page.getByText('Signed in as web').waitFor();
  // From the sign-in, through the tabs, to From: nothing in between traps the focus.
  assert.deepEqual(await tabTo('from'), ['signin-btn', 'signout-btn', 'tab-compose', 'from']);
  await page.keyboard.type('Ann Sender <ann@example.com>');
  // Enter in From moves on to To (it does not send).
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'to');
  await page.keyboard.type('bob@example.org');
  await page.keyboard.press('Enter');
  await page.locator('#compose .chip', { hasText: 'bob@example.org' }).waitFor();
  assert.deepEqual(await tabTo('cc'), ['cc']);
  await page.keyboard.type('carl@example.net,');
  await page.locator('#compose .chip', { hasText: 'carl@example.net' }).waitFor();
  const subject = `Keyboard only ${Date.now()}`;
  await tabTo('subject');
  await page.keyboard.type(subject);
  // Enter in Subject goes to the message; the toolbar is a single Tab stop.
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'editor');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(), 'Bold');
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'Italic');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'editor');
  await page.keyboard.type('Typed without a mouse.');
  // Attachments, the meeting switch and TNEF are on the way to Send.
  const toSend = await tabTo('send');
  for (const stop of ['attachments', 'meeting', 'tnef']) assert.ok(toSend.includes(stop), `${stop} in ${toSend.join(' > ')}`);
  await page.keyboard.press('Space'); // a button is pressed with Space (or Enter)
  await page.getByText(/Done: 2 delivered, 0 failed/).waitFor({ timeout: WAIT });
  const before = received().length;
  // Ctrl+Enter from the message sends the edited message.
  await tabTo('editor', true);
  await page.keyboard.press('End');
  await page.keyboard.type(' Once more.');
  await page.keyboard.press('Control+Enter');
  await page.getByText(/Done: 2 delivered, 0 failed/).waitFor({ timeout: WAIT });
  const [again] = await waitForMessages(before, 1);
  const j = judge(again.file);
  assert.equal(j.subject, subject);
  assert.deepEqual([...again.envelope.rcptTo].sort(), ['bob@example.org', 'carl@example.net']);
  assert.match(j.parts.find((p) => p.type === 'text/plain').text, /Typed without a mouse\. Once more\./);
  await shot(page, 'keyboard');
  await axeCheck(page, 'keyboard send');
  assert.deepEqual(errors, []);
  await context.close();
});

test('files dropped on the composer become attachments, sent byte for byte', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  const subject = `Dropped files ${Date.now()}`;
  await page.getByLabel('From', { exact: true }).fill('Ann Sender <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('Two files attached.');
  // Two files dragged from the desktop and dropped on the composer (not on the editor).
  const csv = Buffer.from('name,amount\nAnn,12\nBob,7\n');
  const bin = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256));
  const dt = await page.evaluateHandle(
    ([a, b]) => {
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const d = new DataTransfer();
      d.items.add(new File([bytes(a)], 'totals.csv', { type: 'text/csv' }));
      d.items.add(new File([bytes(b)], 'data.bin', { type: '' }));
      return d;
    },
    [csv.toString('base64'), bin.toString('base64')],
  );
  await page.dispatchEvent('#compose', 'dragover', { dataTransfer: dt });
  await page.dispatchEvent('#compose', 'drop', { dataTransfer: dt });
  await page.locator('#attachment-list').getByText('totals.csv').waitFor();
  await page.locator('#attachment-list').getByText('data.bin').waitFor();
  // The preview is rebuilt with them.
  await page.getByText(/^Size: .*\(\d+ bytes\)$/).waitFor();
  await page.waitForFunction(() => /filename="?totals\.csv/.test(document.getElementById('raw-eml').value));
  const listed = page.frameLocator('#preview-frame').locator('ul.attachments');
  await listed.getByText('2 attachments:').waitFor();
  await listed.getByText('totals.csv').waitFor();
  await listed.getByText('data.bin').waitFor();
  await shot(page, 'dropped-attachments');
  await axeCheck(page, 'dropped attachments');

  const before = received().length;
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.locator('#rcpt-table tr[data-rcpt="bob@example.org"] td.state[data-state=delivered]').waitFor({ timeout: WAIT });
  const [msg] = await waitForMessages(before, 1);
  const j = judge(msg.file);
  assert.deepEqual(j.defects, []);
  assert.equal(j.subject, subject);
  const got = Object.fromEntries(j.parts.filter((p) => p.filename).map((p) => [p.filename, p]));
  assert.deepEqual(Object.keys(got).sort(), ['data.bin', 'totals.csv']);
  assert.equal(got['totals.csv'].type, 'text/csv');
  assert.equal(got['totals.csv'].size, csv.length);
  assert.equal(got['totals.csv'].hex, csv.subarray(0, 64).toString('hex'));
  assert.equal(got['data.bin'].type, 'application/octet-stream', 'a file with no type is sent as octet-stream');
  assert.equal(got['data.bin'].size, bin.length);
  assert.equal(got['data.bin'].hex, bin.subarray(0, 64).toString('hex'));
  assert.deepEqual(errors, []);
  await context.close();
});

test('an .eml dropped on the page is shown, forwarded unchanged, and becomes a reply and a forward', async () => {
  // The message to open, written by Python's email package (not by postwire).
  const fixture = path.join(tmp, 'fixture.eml');
  run(PY, ['-c', `
import sys
from email.message import EmailMessage
from email import policy
m = EmailMessage(policy=policy.SMTP)
m['From'] = 'Eve Origin <eve@example.com>'
m['To'] = 'ann@example.com'
m['Subject'] = 'Budget review'
m['Message-ID'] = '<budget-1@example.com>'
m['Date'] = 'Tue, 01 Dec 2026 09:00:00 +0000'
m.set_content('Please see the notes.\\n')
m.add_alternative('<p>Please see the <b>notes</b>.</p>', subtype='html')
m.add_attachment(b'line one\\nline two\\n', maintype='text', subtype='plain', filename='notes.txt')
ics = 'BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//judge//EN\\r\\nMETHOD:REQUEST\\r\\nBEGIN:VEVENT\\r\\nUID:b1@example.com\\r\\nDTSTAMP:20261120T100000Z\\r\\nDTSTART:20261203T150000Z\\r\\nDTEND:20261203T160000Z\\r\\nSUMMARY:Budget meeting\\r\\nLOCATION:Room 9\\r\\nORGANIZER;CN=Eve:mailto:eve@example.com\\r\\nATTENDEE;CN=Ann:mailto:ann@example.com\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR\\r\\n'
m.add_attachment(ics.encode(), maintype='text', subtype='calendar', filename='invite.ics')
open(sys.argv[1], 'wb').write(m.as_bytes())
`, fixture]);
  const original = readFileSync(fixture);

  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann <ann@example.com>');
  await page.getByRole('tab', { name: 'Open message' }).click();
  // Drag and drop the file onto the drop zone.
  const dt = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bytes], 'budget.eml', { type: 'message/rfc822' }));
    return d;
  }, original.toString('base64'));
  await page.dispatchEvent('#open-drop', 'drop', { dataTransfer: dt });
  await page.getByRole('heading', { name: 'Budget review' }).waitFor();
  assert.equal(await page.locator('#open-error').textContent(), '');
  await page.locator('#opened-headers').getByText('Eve Origin <eve@example.com>').waitFor();
  await page.frameLocator('#opened-frame').getByText('notes').first().waitFor();
  const inv = page.locator('#opened-invitation');
  await inv.getByText(/Budget meeting/).waitFor();
  assert.match(await inv.textContent(), /Room 9/);
  const dl = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download notes.txt' }).click();
  const file = await (await dl).path();
  assert.equal(readFileSync(file, 'utf8'), 'line one\nline two\n');
  await shot(page, 'opened');
  await axeCheck(page, 'open message');

  // Forward unchanged: the same bytes, a new envelope.
  const before = received().length;
  await addChips(page, 'Forward to', ['dora@example.org']);
  await page.getByRole('button', { name: 'Forward unchanged' }).click();
  await page.getByText('Forwarded unchanged: delivered to dora@example.org').waitFor({ timeout: WAIT });
  const [fwd] = await waitForMessages(before, 1);
  assert.deepEqual({ mailFrom: fwd.envelope.mailFrom, rcptTo: fwd.envelope.rcptTo }, { mailFrom: 'ann@example.com', rcptTo: ['dora@example.org'] });
  assert.ok(fwd.bytes.equals(original), 'forwarded byte for byte');

  // Reply: threading and the sender as recipient.
  await page.getByRole('button', { name: 'Reply' }).click();
  assert.equal(await page.getByLabel('Subject', { exact: true }).inputValue(), 'Re: Budget review');
  await page.locator('#compose .chip', { hasText: 'Eve Origin <eve@example.com>' }).waitFor();
  await page.getByRole('textbox', { name: 'Message' }).getByText('Please see the').waitFor();

  // Forward as a new message: attachments carried over; send it and judge it.
  await page.getByRole('tab', { name: 'Open message' }).click();
  await page.getByRole('button', { name: 'Forward as new message' }).click();
  assert.equal(await page.getByLabel('Subject', { exact: true }).inputValue(), 'Fwd: Budget review');
  await page.locator('#attachment-list').getByText('notes.txt').waitFor();
  await page.locator('#compose .chip', { hasText: 'dora@example.org' }).waitFor();
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.locator('#rcpt-table td.state[data-state=delivered]').waitFor({ timeout: WAIT });
  const [asNew] = await waitForMessages(before + 1, 1);
  const j = judge(asNew.file);
  assert.equal(j.subject, 'Fwd: Budget review');
  assert.deepEqual(asNew.envelope.rcptTo, ['dora@example.org']);
  const notes = j.parts.find((p) => p.filename === 'notes.txt');
  assert.ok(notes, `notes.txt carried over: ${JSON.stringify(j.parts.map((p) => p.filename))}`);
  assert.equal(notes.text, 'line one\nline two\n');
  assert.match(j.parts.find((p) => p.type === 'text/plain').text, /Forwarded message[\s\S]*Please see the notes/);
  await shot(page, 'forward-as-new');
  await axeCheck(page, 'forward as new');
  assert.deepEqual(errors, []);
  await context.close();
});

test('"Send as TNEF" sends a winmail.dat that tnefparse reads, and a winmail.dat dropped on the page opens', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann <ann@example.com>');
  await addChips(page, 'To', ['olga@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill('Outlook style');
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('Sent as TNEF.');
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'sheet.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') });
  await page.getByLabel('Send as TNEF (winmail.dat)').check();
  const before = received().length;
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.locator('#rcpt-table tr[data-rcpt="olga@example.org"] td.state[data-state=delivered]').waitFor({ timeout: WAIT });
  const [msg] = await waitForMessages(before, 1);
  const winmail = path.join(tmp, 'winmail.dat');
  const j = JSON.parse(run(PY, [JUDGE, msg.file, winmail]));
  const tnefPart = j.parts.find((p) => p.type === 'application/ms-tnef');
  assert.ok(tnefPart, `an application/ms-tnef part: ${j.structure}`);
  assert.equal(tnefPart.filename, 'winmail.dat');
  assert.deepEqual(tnefPart.tnef.attachments, ['sheet.csv']);

  // The winmail.dat alone, dropped on the page: decoded in the browser.
  await page.getByRole('tab', { name: 'Open message' }).click();
  const dt = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bytes], 'winmail.dat', { type: 'application/ms-tnef' }));
    return d;
  }, readFileSync(winmail).toString('base64'));
  await page.dispatchEvent('#open-drop', 'drop', { dataTransfer: dt });
  await page.getByRole('heading', { name: 'Outlook style' }).waitFor();
  assert.equal(await page.locator('#open-error').textContent(), '');
  const dl = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download sheet.csv' }).click();
  assert.equal(readFileSync(await (await dl).path(), 'utf8'), 'a,b\n1,2\n');
  assert.equal(await page.getByRole('button', { name: 'Forward unchanged' }).isDisabled(), true);
  await shot(page, 'opened-winmail');
  await axeCheck(page, 'opened winmail.dat');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a bulk of 50 from a CSV: personalised messages, progress, and a results table to download', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await page.getByLabel('From', { exact: true }).fill('News <news@example.com>');
  await page.getByLabel('Subject', { exact: true }).fill('Hello {{name}}');
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('Your code is {{code}}.');
  const rows = Array.from({ length: 50 }, (_, i) => {
    const n = String(i + 1).padStart(2, '0');
    return [`user${n}@example.org`, `User, No. ${n}`, `C-${n}${n}`];
  });
  const csvText = 'email,name,code\n' + rows.map(([e, n, c]) => `${e},"${n}",${c}`).join('\n') + '\n';
  await page.getByRole('tab', { name: 'Bulk' }).click();
  await page.getByLabel('Recipients CSV').setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csvText) });
  await page.getByText('people.csv: 50 recipients; columns: email, name, code').waitFor();
  assert.equal(await page.getByLabel('Email column').inputValue(), 'email');
  // Before sending: the first rows, and the message as row 1 will receive it.
  const shown = page.getByRole('table', { name: 'people.csv: the first 5 of 50 rows' });
  await shown.waitFor();
  assert.deepEqual(await shown.locator('thead th').allTextContents(), ['Line', 'email', 'name', 'code']);
  assert.equal(await shown.locator('tbody tr').count(), 5);
  assert.deepEqual(await shown.locator('tbody tr').first().locator('td').allTextContents(), ['2', 'user01@example.org', 'User, No. 01', 'C-0101']);
  await page.locator('#bulk-sample-subject', { hasText: 'Hello User, No. 01' }).waitFor();
  assert.equal(await page.locator('#bulk-sample-to').textContent(), '"User, No. 01" <user01@example.org>');
  await page.frameLocator('#bulk-sample-frame').getByText('Your code is C-0101.').waitFor();
  await shot(page, 'bulk-preview');
  await axeCheck(page, 'bulk preview');
  // A test of row 1 to From alone.
  const beforeTest = received().length;
  await page.getByRole('button', { name: 'Send a test to me' }).click();
  await page.getByText(/^Test delivered to news@example\.com/).waitFor({ timeout: WAIT });
  const [testMsg] = await waitForMessages(beforeTest, 1);
  assert.deepEqual(testMsg.envelope.rcptTo, ['news@example.com']);
  const jt = judge(testMsg.file);
  assert.equal(jt.subject, '[Test] Hello User, No. 01');
  assert.match(jt.to, /news@example\.com/);
  assert.match(jt.parts.find((p) => p.type === 'text/plain').text, /Your code is C-0101\./);
  const before = received().length;
  await page.getByRole('button', { name: 'Send bulk' }).click();
  await page.getByText(/^50 of 50 answered: 50 accepted, 50 delivered, 0 not sent, 0 failed$/).waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#bulk-progress').evaluate((p) => [p.value, p.max].join('/')), '50/50');
  assert.equal(await page.locator('#bulk-table td.state[data-state=delivered]').count(), 50);
  await shot(page, 'bulk');
  await axeCheck(page, 'bulk results');

  const dl = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download results' }).click();
  const resultsCsv = readFileSync(await (await dl).path(), 'utf8').trim().split(/\r\n/);
  assert.equal(resultsCsv[0], 'row,recipient,id,status,detail');
  assert.equal(resultsCsv.length, 51);
  assert.ok(resultsCsv.slice(1).every((l) => /,delivered,/.test(l)), resultsCsv.slice(1, 3).join('\n'));

  const got = await waitForMessages(before, 50);
  assert.equal(got.length, 50);
  const seen = new Map();
  for (const m of got) {
    assert.equal(m.envelope.rcptTo.length, 1);
    seen.set(m.envelope.rcptTo[0], m);
  }
  for (const [email, name, code] of rows) {
    const m = seen.get(email);
    assert.ok(m, `message for ${email}`);
    const j = judge(m.file);
    assert.equal(j.subject, `Hello ${name}`);
    assert.match(j.to, new RegExp(email.replace('.', '\\.')));
    assert.match(j.parts.find((p) => p.type === 'text/plain').text, new RegExp(`Your code is ${code}\\.`));
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('Stop ends a bulk cleanly: nothing more is submitted, what was accepted is delivered, the rest is listed as stopped', async () => {
  const { page, errors, context } = await newPage();
  await signIn(page, tokens.web);
  await page.getByText('Signed in as web').waitFor();
  await page.getByLabel('From', { exact: true }).fill('News <news@example.com>');
  await page.getByLabel('Subject', { exact: true }).fill('Stop test {{n}}');
  const total = 300;
  const csvText = 'email,n\n' + Array.from({ length: total }, (_, i) => `stop${i + 1}@example.org,${i + 1}`).join('\n') + '\n';
  await page.getByRole('tab', { name: 'Bulk' }).click();
  await page.getByLabel('Recipients CSV').setInputFiles({ name: 'many.csv', mimeType: 'text/csv', buffer: Buffer.from(csvText) });
  await page.getByText(`many.csv: ${total} recipients; columns: email, n`).waitFor();
  // A person presses Stop as soon as the first message is accepted.
  await page.evaluate(() => {
    const table = document.getElementById('bulk-table');
    const obs = new MutationObserver(() => {
      if (table.querySelector('td.state[data-state=accepted], td.state[data-state=delivered]')) {
        obs.disconnect();
        document.getElementById('bulk-stop').click();
      }
    });
    obs.observe(table, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const before = received().length;
  await page.getByRole('button', { name: 'Send bulk' }).click();
  await page.getByText(/^Stopped: \d+ accepted by the relay/).waitFor({ timeout: WAIT });
  const states = await page.locator('#bulk-table td.state').evaluateAll((tds) => tds.map((td) => td.dataset.state));
  assert.equal(states.length, total, 'every row is listed');
  const accepted = states.filter((s) => s === 'accepted' || s === 'delivered').length;
  const stopped = states.filter((s) => s === 'stopped').length;
  assert.equal(accepted + stopped, total, `only accepted or stopped: ${[...new Set(states)]}`);
  assert.ok(stopped > 0 && accepted > 0, `${accepted} accepted, ${stopped} stopped`);
  assert.match(await page.locator('#bulk-info').textContent(), new RegExp(`^Stopped: ${accepted} accepted by the relay .* ${stopped} not sent\\.$`));
  assert.equal(await page.getByRole('button', { name: 'Stop' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Send bulk' }).isDisabled(), false);
  // What was accepted is delivered: every one of them, to the rows at the top of the CSV.
  await page.getByText(new RegExp(`^${total} of ${total} answered: ${accepted} accepted, ${accepted} delivered, 0 not sent, 0 failed, ${stopped} stopped$`)).waitFor({ timeout: WAIT });
  const got = await waitForMessages(before, accepted);
  assert.equal(got.length, accepted);
  const firstStopped = states.indexOf('stopped');
  assert.deepEqual(got.map((m) => m.envelope.rcptTo[0]).sort(), Array.from({ length: firstStopped }, (_, i) => `stop${i + 1}@example.org`).sort());
  await shot(page, 'bulk-stopped');
  await axeCheck(page, 'stopped bulk');
  const dl = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download results' }).click();
  const lines = readFileSync(await (await dl).path(), 'utf8').trim().split(/\r\n/);
  assert.equal(lines.length, total + 1);
  assert.equal(lines.filter((l) => /,stopped,not sent: the bulk was stopped$/.test(l)).length, stopped);
  assert.deepEqual(errors, []);
  await context.close();
});

test('every refusal shows a clear message and nothing is delivered', async () => {
  const { page, errors, context } = await newPage();
  const before = received().length;
  // Unknown token.
  await signIn(page, 'pw_not_a_real_token');
  await page.getByText(/Sign-in failed: The relay does not know this token.*\(unauthorized/).waitFor();
  // A sender the token may not use.
  await signIn(page, tokens.other);
  await page.getByText('Signed in as other').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Ann <ann@example.com>');
  await addChips(page, 'To', ['bob@example.org']);
  await page.getByLabel('Subject', { exact: true }).fill('not allowed');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText(/Not sent: This token may not send from this From address.*\(sender_not_allowed/).waitFor();
  // Too large for the token.
  await signIn(page, tokens.small);
  await page.getByText('Signed in as small').waitFor();
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(10_000, 1) });
  await page.getByText(/^big\.bin was not attached: .* this token may send up to 3\.9 KB a message\.$/).waitFor();
  assert.equal(await page.locator('#attachment-list li').count(), 0);
  // An invalid address never leaves the page.
  await addChips(page, 'Cc', ['not-an-address']);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText('Cc: "not-an-address" is not a valid address: the address has no @').first().waitFor();
  await shot(page, 'refusals');
  await axeCheck(page, 'refusals');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(received().length, before, 'nothing was delivered');
  assert.deepEqual(errors, []);
  await context.close();
});
