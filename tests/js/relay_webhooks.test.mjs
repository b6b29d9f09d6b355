// Webhooks judged from Node.js: a relay POSTs accepted and delivered to an
// http server here, and the JavaScript verification snippet of
// docs/webhooks.md, exactly as written there, checks every signature.
// Run: POSTWIRE_BIN=target/debug/postwire node --test tests/js/relay_webhooks.test.mjs

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';

import { ROOT, addToken, bin, message, startRelay, tmpdir, waitFor } from '../e2e/harness.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** `verifyPostwire` of the first ```js block of docs/webhooks.md. */
async function docVerifier(dir) {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/webhooks.md'), 'utf8');
  const block = /```js\n([\s\S]*?)```/.exec(doc)[1];
  const file = path.join(dir, 'verify.mjs');
  fs.writeFileSync(file, block);
  return (await import(pathToFileURL(file).href)).verifyPostwire;
}

/** Runs a command without blocking the event loop (the endpoint must answer meanwhile). */
function run(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(bin(), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('accepted and delivered reach a Node.js endpoint and pass the documented verification', async () => {
  const dir = tmpdir('webhooks');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const verifyPostwire = await docVerifier(dir);
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app');
  const hits = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  const add = spawnSync(
    bin(),
    ['webhook', 'add', 'js', '--url', url, '--token', 'app', '--allow-http', '--allow-private', '--data-dir', dataDir],
    { encoding: 'utf8' },
  );
  assert.equal(add.status, 0, add.stderr);
  const secret = add.stdout.trim();
  assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);

  const relay = await startRelay({ dataDir });
  cleanups.push(() => relay.kill());
  const eml = path.join(dir, 'hook.eml');
  fs.writeFileSync(eml, message('hook-js'));
  const sent = await run(['submit', '--relay', relay.url, '--wait', '--json', eml], { POSTWIRE_TOKEN: token });
  assert.equal(sent.status, 0, sent.stderr);
  const id = JSON.parse(sent.stdout).messages[0].id;

  const types = () => new Set(hits.map((h) => JSON.parse(h.body).type));
  await waitFor('accepted and delivered at the endpoint', () => types().has('accepted') && types().has('delivered'));
  for (const h of hits) {
    const sig = h.headers['postwire-signature'];
    assert.ok(verifyPostwire(secret, sig, h.body), `verifies: ${sig}`);
    assert.ok(!verifyPostwire(`${secret}x`, sig, h.body), 'not with another secret');
    assert.ok(!verifyPostwire(secret, sig, Buffer.concat([h.body, Buffer.from(' ')])), 'not another body');
    const event = JSON.parse(h.body);
    assert.deepEqual(event.message, { token: 'app', id });
    assert.equal(h.headers['postwire-event'], event.type);
  }
  assert.ok(!relay.log().includes(secret), 'the secret is never logged');
});
