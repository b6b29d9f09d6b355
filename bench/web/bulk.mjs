// Benchmark of the composer page's bulk send, in a real browser: N
// personalised messages built by the WebAssembly package in the page and sent
// through `postwire serve` (pickup directory, so the relay and the disk are
// the only other costs). Prints the time until every message was accepted and
// until every one was delivered, and the rates.
//
//   node bench/web/bulk.mjs [N=500]
//
// Needs what the browser tests need (scripts/setup.sh), web/dist built
// (scripts/build-web.sh) and the postwire binary (POSTWIRE_BIN, default
// target/debug/postwire; a release build gives the relay's real speed).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const N = Number(process.argv[2] ?? 500);
const BIN = process.env.POSTWIRE_BIN ?? path.join(ROOT, 'target/debug/postwire');
const { chromium } = createRequire(path.join(ROOT, 'web/package.json'))('playwright-core');

const dir = mkdtempSync(path.join(tmpdir(), 'postwire-bench-web-'));
const data = path.join(dir, 'data');
const token = execFileSync(BIN, ['token', 'add', 'bench', '--data-dir', data, '--allow-from', '@example.com'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
const relay = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', data], {
  env: { ...process.env, POSTWIRE_WEB_DIR: path.join(ROOT, 'web/dist'), POSTWIRE_LOG: 'warn' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
const addr = await new Promise((resolve, reject) => {
  let log = '';
  relay.stderr.on('data', (d) => {
    log += d;
    const m = /listening on (127\.0\.0\.1:\d+)/.exec(log);
    if (m) resolve(m[1]);
  });
  relay.on('exit', (c) => reject(new Error(`relay exited ${c}: ${log}`)));
});
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  const page = await browser.newPage();
  await page.goto(`http://${addr}/`);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as bench').waitFor();
  await page.getByLabel('From', { exact: true }).fill('Bench <bench@example.com>');
  await page.getByLabel('Subject', { exact: true }).fill('Hello {{name}}');
  await page.getByRole('textbox', { name: 'Message' }).click();
  await page.keyboard.type('Dear {{name}}, your code is {{code}}. ' + 'Some ordinary newsletter text. '.repeat(30));
  const csv = 'email,name,code\n' + Array.from({ length: N }, (_, i) => `user${i}@example.org,User ${i},C${i}`).join('\n');
  await page.getByRole('tab', { name: 'Bulk' }).click();
  await page.getByLabel('Recipients CSV').setInputFiles({ name: 'b.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByText(`b.csv: ${N} recipients`).waitFor();
  const t0 = performance.now();
  await page.getByRole('button', { name: 'Send bulk' }).click();
  await page.getByText(new RegExp(`^${N} of ${N} answered: ${N} accepted`)).waitFor({ timeout: 600_000 });
  const accepted = performance.now() - t0;
  await page.getByText(new RegExp(`^${N} of ${N} answered: ${N} accepted, ${N} delivered`)).waitFor({ timeout: 600_000 });
  const delivered = performance.now() - t0;
  const files = readdirSync(path.join(data, 'pickup')).filter((f) => f.endsWith('.eml')).length;
  console.log(`bulk of ${N} from the page: all accepted in ${(accepted / 1000).toFixed(2)} s (${(N / (accepted / 1000)).toFixed(0)} msg/s), all delivered in ${(delivered / 1000).toFixed(2)} s (${(N / (delivered / 1000)).toFixed(0)} msg/s); ${files} files in the pickup directory`);
} finally {
  await browser.close();
  relay.kill('SIGTERM');
}
