// RelayClient as a new Node.js user meets it: the packed `postwire` tarball
// installed into an empty project, `new RelayClient(url, { token })` with no
// WebSocket passed in (Node.js 20 has no global WebSocket; the package's own
// `ws` dependency is used), sending through the real relay into its pickup
// directory.
// Run: POSTWIRE_BIN=target/debug/postwire node --test tests/js/relay_installed_client.test.mjs

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';

import { addToken, message, startRelay, tmpdir } from '../e2e/harness.mjs';
import { packAndInstall } from '../../wasm/test/helpers.mjs';

const run = promisify(execFile);
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('the installed package sends with new RelayClient(url, { token }) alone', async () => {
  const { dir: project } = packAndInstall('postwire-client-');
  assert.ok(
    fs.existsSync(path.join(project, 'node_modules', 'ws', 'package.json')),
    'installing postwire brings its WebSocket for Node.js',
  );
  const dataDir = path.join(tmpdir('installed-client'), 'data');
  const token = addToken(dataDir, 'app');
  const relay = await startRelay({ dataDir });
  cleanups.push(() => relay.kill());

  const script = `
import { RelayClient } from 'postwire';
const [url, token, bytes] = process.argv.slice(1);
const client = new RelayClient(url, { token });
const sent = await client.send(new TextEncoder().encode(bytes));
const results = await sent.done;
client.close();
console.log(JSON.stringify({ global: typeof globalThis.WebSocket, rcptTo: sent.rcptTo, results }));
`;
  const bytes = Buffer.from(message('installed-1')).toString('latin1');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, relay.url, token, bytes], {
    cwd: project,
    timeout: 30000,
  });
  const out = JSON.parse(stdout.trim().split('\n').pop());
  assert.deepEqual(out.rcptTo, ['bob@example.org']);
  assert.equal(out.results.length, 1);
  assert.equal(out.results[0].state, 'delivered');
  const emls = fs.readdirSync(path.join(dataDir, 'pickup')).filter((f) => f.endsWith('.eml'));
  assert.equal(emls.length, 1, 'the message landed in the pickup directory');
  assert.ok(
    fs.readFileSync(path.join(dataDir, 'pickup', emls[0])).equals(Buffer.from(message('installed-1'))),
    'byte for byte',
  );
});
