// Token management end to end through the real binary: `postwire token list
// [--json]` and `postwire token remove`, and a running relay that picks up
// tokens.toml changes without a restart (removed token refused at the next
// connection and at the next submit of an open session; broken file keeps the
// old tokens; SIGHUP reloads).
// Run: POSTWIRE_BIN=target/debug/postwire node --test tests/js/relay_tokens.test.mjs

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { WebSocket, addToken, bin, message, startRelay, tmpdir, waitFor } from '../e2e/harness.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function postwire(args) {
  return spawnSync(bin(), args, { encoding: 'utf8' });
}

/**
 * Opens /v1/submit and authenticates by Bearer header or auth frame.
 * Resolves to { status } when the upgrade is refused, else to a session whose
 * next() gives { frame } or { close, reason } in order.
 */
function open(url, token, { bearer = false } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'postwire.v1', bearer ? { headers: { Authorization: `Bearer ${token}` } } : {});
    const queue = [];
    const waiters = [];
    const push = (item) => {
      const w = waiters.shift();
      if (w) w(item);
      else queue.push(item);
    };
    ws.on('message', (data) => push({ frame: JSON.parse(data.toString()) }));
    ws.on('close', (code, reason) => push({ close: code, reason: reason.toString() }));
    ws.on('error', (e) => {
      const m = /Unexpected server response: (\d+)/.exec(e.message);
      if (m) resolve({ status: Number(m[1]) });
      else reject(e);
    });
    ws.on('open', () => {
      if (!bearer) ws.send(JSON.stringify({ type: 'auth', token }));
      const next = () => {
        if (queue.length) return Promise.resolve(queue.shift());
        return new Promise((r, j) => {
          const t = setTimeout(() => j(new Error('no frame within 5 s')), 5000);
          waiters.push((item) => {
            clearTimeout(t);
            r(item);
          });
        });
      };
      const session = { ws, next };
      cleanups.push(() => ws.terminate());
      resolve(session);
    });
  });
}

/** The next frame that is not a delivery event. */
async function answer(s) {
  for (;;) {
    const m = await s.next();
    if (m.frame && ['delivered', 'deferred', 'failed'].includes(m.frame.type)) continue;
    return m;
  }
}

async function send(s, id) {
  const bytes = message(id);
  s.ws.send(JSON.stringify({ type: 'submit', id, size: bytes.length }));
  s.ws.send(bytes);
  return answer(s);
}

/** A ready session, or the refusal (HTTP status, or error frame + close). */
async function session(url, token, opts) {
  const s = await open(url, token, opts);
  if (s.status) return { refused: { status: s.status } };
  const first = await s.next();
  if (first.frame?.type === 'ready') return s;
  return { refused: { first, then: await s.next() } };
}

function replaceFile(file, text) {
  fs.writeFileSync(`${file}.edit`, text);
  fs.renameSync(`${file}.edit`, file);
}

test('token list shows names, senders, limits and a hash prefix, never a secret or a whole hash', () => {
  const dataDir = path.join(tmpdir('list'), 'data');
  let r = postwire(['token', 'list', '--data-dir', dataDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
  assert.match(r.stderr, /no tokens/);
  r = postwire(['token', 'list', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /no tokens/);

  const a = addToken(dataDir, 'a', ['@example.com', 'ana@example.org'], ['--max-size', '1000', '--rate', '7']);
  const b = addToken(dataDir, 'b', []);
  const stored = fs.readFileSync(path.join(dataDir, 'tokens.toml'), 'utf8');
  const hashes = [...stored.matchAll(/hash = "(sha256:[0-9a-f]{64})"/g)].map((m) => m[1]);
  assert.equal(hashes.length, 2);

  r = postwire(['token', 'list', '--data-dir', dataDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const list = JSON.parse(r.stdout);
  assert.deepEqual(
    list.map(({ hashPrefix, ...rest }) => rest),
    [
      { name: 'a', allowFrom: ['@example.com', 'ana@example.org'], maxSize: 1000, ratePerMinute: 7 },
      { name: 'b', allowFrom: [], maxSize: 26214400, ratePerMinute: 60000 },
    ],
  );
  list.forEach((t, i) => assert.equal(t.hashPrefix, `${hashes[i].slice(0, 15)}…`));

  const text = postwire(['token', 'list', '--data-dir', dataDir]);
  assert.equal(text.status, 0, text.stderr);
  assert.deepEqual(text.stdout.trimEnd().split('\n'), [
    `a  allow-from=@example.com,ana@example.org  max-size=1000  rate=7/min  ${list[0].hashPrefix}`,
    `b  allow-from=none  max-size=26214400  rate=60000/min  ${list[1].hashPrefix}`,
  ]);
  for (const out of [r.stdout + r.stderr, text.stdout + text.stderr]) {
    for (const secret of [a, b]) assert.ok(!out.includes(secret), 'no secret in the listing');
    for (const h of hashes) assert.ok(!out.includes(h.slice(7, 30)), 'no whole hash in the listing');
  }
});

test('token remove takes out only that token; an unknown name is an error and changes nothing', () => {
  const dataDir = path.join(tmpdir('remove'), 'data');
  addToken(dataDir, 'a');
  addToken(dataDir, 'b');
  addToken(dataDir, 'c');
  const file = path.join(dataDir, 'tokens.toml');
  let r = postwire(['token', 'remove', 'b', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  const names = () => JSON.parse(postwire(['token', 'list', '--data-dir', dataDir, '--json']).stdout).map((t) => t.name);
  assert.deepEqual(names(), ['a', 'c']);

  const before = fs.readFileSync(file, 'utf8');
  r = postwire(['token', 'remove', 'b', '--data-dir', dataDir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^postwire: no token named "b"$/m);
  assert.equal(fs.readFileSync(file, 'utf8'), before);
  assert.deepEqual(names(), ['a', 'c']);
});

test('a running relay refuses a removed token without a restart, keeps its tokens through a broken file, and reloads on SIGHUP', async () => {
  const dataDir = path.join(tmpdir('live'), 'data');
  const keep = addToken(dataDir, 'keep');
  const gone = addToken(dataDir, 'gone');
  const file = path.join(dataDir, 'tokens.toml');
  const relay = await startRelay({ dataDir });
  cleanups.push(() => relay.kill());

  const open1 = await session(relay.url, gone);
  assert.ok(open1.ws, JSON.stringify(open1.refused));
  assert.equal((await send(open1, 'g1')).frame?.type, 'accepted');

  const r = postwire(['token', 'remove', 'gone', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  await waitFor(
    'the relay refuses the removed token at the upgrade',
    async () => (await session(relay.url, gone, { bearer: true })).refused?.status === 401,
    10000,
  );
  const byFrame = await session(relay.url, gone);
  assert.deepEqual(byFrame.refused, {
    first: { frame: { type: 'error', code: 'unauthorized', message: 'unknown token' } },
    then: { close: 4401, reason: 'unknown token' },
  });
  // The open session learns at its next submit.
  assert.deepEqual(await send(open1, 'g2'), {
    frame: { type: 'error', code: 'unauthorized', message: 'the token was revoked' },
  });
  assert.deepEqual(await open1.next(), { close: 4401, reason: 'the token was revoked' });
  assert.match(relay.log(), /tokens reloaded.*tokens=1/);

  // A broken file: the old tokens keep working, the log names the file and the problem.
  const good = fs.readFileSync(file, 'utf8');
  replaceFile(file, '[[token]]\nname = "keep"\nhash = \n');
  await waitFor('the failed reload is logged', () => /cannot reload the tokens/.test(relay.log()), 10000);
  const failure = relay.log().split('\n').find((l) => /cannot reload the tokens/.test(l));
  assert.ok(failure.includes(file), failure);
  assert.match(failure, /line 3, column \d+/);
  const k = await session(relay.url, keep, { bearer: true });
  assert.ok(k.ws, JSON.stringify(k.refused));
  assert.equal((await send(k, 'k1')).frame?.type, 'accepted');
  const metrics = await (await fetch(relay.url.replace(/^ws/, 'http').replace('/v1/submit', '/metrics'))).text();
  assert.match(metrics, /^postwire_token_reload_failures_total 1$/m, 'the failed reload is counted');

  // SIGHUP reloads (and does not end the relay).
  replaceFile(file, good);
  await waitFor('the repaired file is reloaded', () => (relay.log().match(/tokens reloaded/g)?.length ?? 0) >= 2, 10000);
  relay.proc.kill('SIGHUP');
  await waitFor('SIGHUP reloads the tokens', () => /tokens reloaded.*trigger="?SIGHUP/.test(relay.log()), 10000);
  const k2 = await session(relay.url, keep);
  assert.ok(k2.ws, JSON.stringify(k2.refused));
  assert.equal((await send(k2, 'k2')).frame?.type, 'accepted');

  for (const secret of [keep, gone]) assert.ok(!relay.log().includes(secret), 'no secret in the log');
  assert.doesNotMatch(relay.log(), /sha256:[0-9a-f]{16}/, 'no hash in the log');
});
