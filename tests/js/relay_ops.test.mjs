// Operations of the relay, end to end through the real binary: the embedded
// pickup default, graceful shutdown on SIGTERM, health and metrics.
// Run: POSTWIRE_BIN=target/debug/postwire POSTWIRE_VENV=.venv node --test tests/js/relay_ops.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';

import { WebSocket, addToken, makeCerts, message, messageIdOf, startRelay, startSmtpd, tmpdir } from '../e2e/harness.mjs';
import { RelayClient } from '../../wasm/js/relay-client.js';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test('with no --smtp the relay says so and delivers into the pickup directory of its data dir', async () => {
  const dir = tmpdir('pickup');
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app');
  const relay = await startRelay({ dataDir });
  cleanups.push(() => relay.kill());
  assert.match(relay.log(), new RegExp(`delivered into ${path.join(dataDir, 'pickup').replaceAll('/', '\\/')}`));

  const c = new RelayClient(relay.url, { token, WebSocket });
  cleanups.push(() => c.close());
  const bytes = message('pickup-1');
  const msg = await c.send(bytes);
  assert.deepEqual(msg.rcptTo, ['bob@example.org'], 'envelope derived from the headers');
  const [result] = await msg.done;
  assert.equal(result.state, 'delivered');
  const pickup = path.join(dataDir, 'pickup');
  const emls = fs.readdirSync(pickup).filter((f) => f.endsWith('.eml'));
  assert.equal(emls.length, 1);
  assert.ok(fs.readFileSync(path.join(pickup, emls[0])).equals(Buffer.from(bytes)), 'byte for byte');
  const envelope = JSON.parse(fs.readFileSync(path.join(pickup, emls[0].replace(/\.eml$/, '.json')), 'utf8'));
  assert.deepEqual(envelope, { mailFrom: 'ana@example.com', rcptTo: ['bob@example.org'] });

  const health = await (await fetch(`${relay.http}/healthz`)).json();
  assert.equal(health.status, 'ok');
  assert.match(health.upstream, /pickup directory/);
  const metrics = await (await fetch(`${relay.http}/metrics`)).text();
  assert.match(metrics, /^postwire_accepted_total 1$/m);
  assert.match(metrics, /^postwire_delivered_total 1$/m);
  assert.match(metrics, /^postwire_accept_latency_seconds_count 1$/m);
  assert.match(metrics, /^postwire_events_dropped_total 0$/m);
  assert.match(metrics, /^postwire_token_reloads_total \d+$/m);
  assert.match(metrics, /^postwire_token_reload_failures_total 0$/m);
  assert.doesNotMatch(relay.log(), new RegExp(token), 'the token secret never appears in the log');
  assert.doesNotMatch(relay.log(), /message pickup-1/, 'message bodies never appear in the log');
});

test('SIGTERM stops the relay cleanly and what was not delivered stays spooled for the next start', async () => {
  const dir = tmpdir('term');
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app');
  const smtpd = await startSmtpd(dir);
  cleanups.push(() => smtpd.stop());
  // First run: the upstream is a port where nothing listens, so every attempt is deferred.
  const dead = await freePort();
  let relay = await startRelay({ dataDir, smtpd, smtpUrl: smtpd.url(dead, 2), args: ['--retry-initial', '60s'] });
  const c = new RelayClient(relay.url, { token, WebSocket, reconnect: false });
  const msgs = [];
  for (let i = 0; i < 3; i++) msgs.push(await c.send(message(`term-${i}`), { id: `term-${i}` }));
  await Promise.all(msgs.map((m) => new Promise((r) => m.on('deferred', r))));
  const closed = new Promise((r) => c.on('close', r));
  const exit = await relay.kill('SIGTERM');
  assert.equal(exit.code, 0, `relay exit: ${JSON.stringify(exit)}\n${relay.log()}`);
  const close = await closed;
  assert.equal(close.code, 1001, 'sessions are told the relay is going away');
  assert.match(relay.log(), /stopped; queued messages stay in the spool.*queued=3/);

  // Second run, with the upstream reachable: the spooled messages go out.
  relay = await startRelay({ dataDir, smtpd });
  cleanups.push(() => relay.kill());
  const deadline = Date.now() + 30000;
  while (smtpd.received().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(smtpd.received().map(messageIdOf).sort(), ['term-0', 'term-1', 'term-2']);
});

test('the Node.js example of docs/relay.md sends a message that lands in the pickup directory', async () => {
  const { spawnSync } = await import('node:child_process');
  const { ROOT } = await import('../e2e/harness.mjs');
  const dir = tmpdir('example');
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'demo');
  const relay = await startRelay({ dataDir });
  cleanups.push(() => relay.kill());
  const r = spawnSync(process.execPath, [path.join(ROOT, 'tests/e2e/send-example.mjs'), relay.url], {
    env: { ...process.env, POSTWIRE_TOKEN: token },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bob@example\.org: delivered/);
  const emls = fs.readdirSync(path.join(dataDir, 'pickup')).filter((f) => f.endsWith('.eml'));
  assert.equal(emls.length, 1);
  assert.match(fs.readFileSync(path.join(dataDir, 'pickup', emls[0]), 'utf8'), /Hello Bob\./);
});

test('with --tls-cert and --tls-key the relay serves wss:// and plain ws:// no longer connects', async () => {
  const dir = tmpdir('tls');
  const certs = makeCerts(dir);
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app');
  const relay = await startRelay({ dataDir, args: ['--tls-cert', certs.cert, '--tls-key', certs.key] });
  cleanups.push(() => relay.kill());
  assert.match(relay.log(), /endpoint wss:\/\//);
  const wss = relay.url.replace('ws://', 'wss://');
  const c = new RelayClient(wss, { token, WebSocket, webSocketOptions: { ca: fs.readFileSync(certs.ca) } });
  cleanups.push(() => c.close());
  const msg = await c.send(message('tls-1'));
  assert.equal((await msg.done)[0].state, 'delivered');
  // Without the test CA the certificate is not trusted, and plain ws:// is not spoken.
  const untrusted = new RelayClient(wss, { token, WebSocket });
  await assert.rejects(untrusted.send(message('tls-2')), (e) => e.code === 'connection_failed');
  const plain = new RelayClient(relay.url, { token, WebSocket });
  await assert.rejects(plain.send(message('tls-3')), (e) => e.code === 'connection_failed');
});
