// The package in a real browser (Debian's Chromium, headless, driven by
// playwright-core; never a downloaded browser): the packed tarball is
// installed into a fresh project and used (b) from a page bundled by Vite and
// (c) from a plain <script type="module"> without a bundler.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { build as viteBuild } from 'vite';
import { packAndInstall } from './helpers.mjs';

const CHROMIUM = '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

// A Shift_JIS message (subject, sender name and body), as Japanese mailers write them.
const SJIS_B64 = Buffer.concat([
  Buffer.from('From: =?shift_jis?B?jlKTY5G+mFk=?= <yamada@example.jp>\r\nSubject: =?shift_jis?B?gqiMqZDPguiCzIyP?=\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\n'),
  Buffer.from(Buffer.from('grGC8YLJgr+CzYFBkKKKRYFC', 'base64').toString('base64') + '\r\n'),
]).toString('base64');

// The page's work: build with an attachment, parse back, envelope, one coded
// error, and a message in a legacy charset.
const PAGE_SCRIPT = (from) => `
import { buildEml, parseEml, envelopeOf } from '${from}';
try {
  const eml = buildEml({ from: 'Ana <ana@example.com>', to: ['bob@example.com'], subject: 'Hola navegador',
    text: 'hi', attachments: [{ filename: 'a.bin', content: 'AAECAw==' }] }, { now: 1764000000000, seed: 42n });
  const spec = parseEml(eml);
  let code = null;
  try { buildEml({ to: ['bob'] }); } catch (e) { code = e.code + ' ' + e.path; }
  // Shift_JIS, which the npm build decodes through the browser's TextDecoder.
  const sjis = Uint8Array.from(atob(${JSON.stringify(SJIS_B64)}), (c) => c.charCodeAt(0));
  const legacy = parseEml(sjis);
  window.__result = { spec, env: envelopeOf(eml), code, size: eml.length, legacy: [legacy.from, legacy.subject, legacy.text] };
} catch (e) {
  window.__result = { failed: String(e && e.stack || e) };
}
`;

function serve(root) {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      let file = join(root, path);
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
      if (!existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

let project;
let browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/setup.d/10-wasm.sh)`);
  project = packAndInstall('postwire-browser-').dir;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});
after(async () => {
  await browser?.close();
});

async function runPage(root, path) {
  const server = await serve(root);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`http://127.0.0.1:${server.address().port}${path}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 30_000 });
    const result = await page.evaluate(() => window.__result);
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await page.close();
    server.close();
  }
}

function check(result) {
  assert.equal(result.failed, undefined, result.failed);
  assert.equal(result.spec.subject, 'Hola navegador');
  assert.equal(result.spec.date, '2025-11-24T16:00:00Z');
  assert.equal(result.spec.attachments[0].content, 'AAECAw==');
  assert.deepEqual(result.env, { mailFrom: 'ana@example.com', rcptTo: ['bob@example.com'] });
  assert.equal(result.code, 'INVALID_SPEC to[0]');
  assert.deepEqual(result.legacy, ['山田太郎 <yamada@example.jp>', 'お見積りの件', 'こんにちは、世界。']);
}

test('(c) plain <script type="module"> loads the installed package without a bundler', async () => {
  writeFileSync(join(project, 'plain.html'),
    `<!doctype html><meta charset="utf-8"><script type="module">${PAGE_SCRIPT('./node_modules/postwire/browser.js')}</script>`);
  check(await runPage(project, '/plain.html'));
});

test('(b) a page bundled by Vite imports `postwire` by name', async () => {
  const src = join(project, 'vite-src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>');
  writeFileSync(join(src, 'main.js'), PAGE_SCRIPT('postwire'));
  const outDir = join(project, 'vite-dist');
  await viteBuild({ root: src, logLevel: 'warn', configFile: false, build: { outDir, emptyOutDir: true } });
  const emitted = readFileSync(join(outDir, 'index.html'), 'utf8');
  assert.match(emitted, /assets\/index-[\w-]+\.js/);
  check(await runPage(outDir, '/'));
});
