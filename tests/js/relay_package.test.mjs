// The npm package end to end: RelayClient as the package exports it builds a
// spec with the package's WebAssembly buildEml and sends it through the real
// relay to the STARTTLS+AUTH test server. Needs the built package (wasm/pkg,
// made by scripts/setup.sh via scripts/build-wasm.sh): without it this fails.
// Run: POSTWIRE_BIN=target/debug/postwire POSTWIRE_VENV=.venv node --test tests/js/relay_package.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { ROOT, WebSocket, addToken, startRelay, startSmtpd, tmpdir } from '../e2e/harness.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a spec sent with the package RelayClient arrives built by the package, its bcc only in the envelope', async () => {
  const entry = path.join(ROOT, 'wasm/node.js');
  assert.ok(fs.existsSync(entry), `${entry} is missing: the npm package is not built (scripts/setup.sh)`);
  const pkg = await import(entry);
  const dir = tmpdir('package');
  const smtpd = await startSmtpd(dir);
  cleanups.push(() => smtpd.stop());
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app');
  const relay = await startRelay({ dataDir, smtpd });
  cleanups.push(() => relay.kill());

  const client = new pkg.RelayClient(relay.url, { token, WebSocket });
  cleanups.push(() => client.close());
  const spec = {
    from: 'Ana Núñez <ana@example.com>',
    to: ['Bob <bob@example.org>'],
    bcc: ['hidden@example.net'],
    subject: 'Reunión por el relay',
    text: 'Hola Bob.',
    messageId: '<package-1@example.com>',
    date: '2026-12-01T09:00:00Z',
  };
  const msg = await client.send(spec);
  assert.deepEqual(msg.rcptTo, ['bob@example.org', 'hidden@example.net']);
  const results = await msg.done;
  assert.deepEqual(results.map((r) => r.state), ['delivered', 'delivered']);

  const [received] = smtpd.received();
  assert.ok(received, 'the message reached the SMTP server');
  // SMTP's DATA ends on CRLF.CRLF, so a message whose last line has no CRLF
  // gets one on the wire; every other byte is as built.
  let expected = Buffer.from(pkg.buildEml(spec));
  if (!expected.subarray(-2).equals(Buffer.from('\r\n'))) expected = Buffer.concat([expected, Buffer.from('\r\n')]);
  assert.ok(expected.equals(received), `the bytes the package builds are the bytes delivered:\n${received}`);
  assert.doesNotMatch(received.toString('latin1'), /^Bcc:/im);
  assert.equal(pkg.parseEml(received).subject, 'Reunión por el relay');
  const json = fs.readdirSync(smtpd.out).find((f) => f.endsWith('.json'));
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(smtpd.out, json), 'utf8')).rcptTo, ['bob@example.org', 'hidden@example.net']);
});
