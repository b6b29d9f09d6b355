// The container's contract, checked without a Docker engine (none runs on the
// CI machines): the Dockerfile's runtime settings (ENV, ENTRYPOINT, CMD) and
// the commands its header documents are run against the real binary, and its
// HEALTHCHECK command is run, as written, against a live relay and a dead one.
// Run: POSTWIRE_BIN=target/debug/postwire node --test tests/js/relay_container.test.mjs

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { ROOT, WebSocket, bin, message, tmpdir, waitFor } from '../e2e/harness.mjs';
import { RelayClient } from '../../wasm/js/relay-client.js';

const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The last stage of the Dockerfile (the runtime image), with continuation lines joined. */
function runtimeStage() {
  const stages = dockerfile.replace(/\\\n/g, ' ').split(/^(?=FROM )/m);
  return stages[stages.length - 1];
}

/** `ENV A=b C=d` of the runtime stage as an object. */
function runtimeEnv() {
  const env = {};
  for (const line of runtimeStage().split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1].trim().split(/\s+/)) {
      const [k, ...v] = pair.split('=');
      env[k] = v.join('=');
    }
  }
  return env;
}

/** The JSON array of an instruction (`ENTRYPOINT [...]`, `CMD [...]`, `HEALTHCHECK ... CMD [...]`). */
function execForm(instruction) {
  const line = runtimeStage()
    .split('\n')
    .find((l) => l.startsWith(`${instruction} `));
  assert.ok(line, `the runtime stage has ${instruction}`);
  const json = line.slice(line.indexOf('['));
  return JSON.parse(json);
}

test('the runtime image runs as a non-root user with its data on a volume', () => {
  const stage = runtimeStage();
  assert.match(stage, /^FROM debian:bookworm-slim/, 'the runtime stage is slim Debian');
  const user = /^USER\s+(\S+)/m.exec(stage);
  assert.ok(user, 'a USER line');
  assert.doesNotMatch(user[1], /^(root|0)(:|$)/, 'not root');
  assert.match(stage, /^VOLUME \["\/data"\]/m);
  assert.equal(runtimeEnv().POSTWIRE_DATA_DIR, '/data');
  // The page is built into the binary: the build stage runs scripts/build-release.sh,
  // which builds web/dist (build-web.sh) before the release build embeds it.
  const build = dockerfile.slice(0, dockerfile.lastIndexOf('\nFROM '));
  assert.match(build, /^RUN bash scripts\/build-release\.sh/m, 'the build stage uses the README build command');
  const script = fs.readFileSync(path.join(ROOT, 'scripts/build-release.sh'), 'utf8');
  const web = script.search(/^bash scripts\/build-web\.sh/m);
  const cargo = script.search(/^cargo build --release/m);
  assert.ok(web > 0 && cargo > web, 'build-web.sh runs before the release build, so the page is embedded');
});

test("the image's ENTRYPOINT, CMD and ENV start a relay, and the documented token command works with them", async () => {
  const dir = tmpdir('container');
  const env = runtimeEnv();
  assert.ok(env.POSTWIRE_LISTEN, 'the image says where to listen');
  // Same settings, mapped onto this machine: a temp dir for /data, loopback for 0.0.0.0.
  const childEnv = {
    ...process.env,
    ...env,
    POSTWIRE_DATA_DIR: path.join(dir, 'data'),
    POSTWIRE_LISTEN: '127.0.0.1:0',
    POSTWIRE_LOG: 'info',
  };
  const [entry, ...entryArgs] = execForm('ENTRYPOINT');
  assert.equal(entry, 'postwire');
  const cmd = execForm('CMD');

  // "docker run ... postwire-relay token add app --allow-from @example.com": no --data-dir given.
  const added = spawnSync(bin(), [...entryArgs, 'token', 'add', 'app', '--allow-from', '@example.com'], {
    env: childEnv,
    encoding: 'utf8',
  });
  assert.equal(added.status, 0, added.stderr);
  const token = added.stdout.trim();
  assert.match(token, /^pw_/);

  const proc = spawn(bin(), [...entryArgs, ...cmd], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  const port = await waitFor('the relay to listen', () => /listening on 127\.0\.0\.1:(\d+)/.exec(log)?.[1], 30000);

  // Delivered into the pickup directory of the data volume, as the header says.
  const c = new RelayClient(`ws://127.0.0.1:${port}/v1/submit`, { token, WebSocket });
  cleanups.push(() => c.close());
  const sent = await c.send(message('container-1'));
  const [result] = await sent.done;
  assert.equal(result.state, 'delivered');
  const pickup = path.join(dir, 'data', 'pickup');
  assert.equal(fs.readdirSync(pickup).filter((f) => f.endsWith('.eml')).length, 1);

  // The HEALTHCHECK command as written, on this relay's port: healthy while it runs...
  const [shell, ...hcArgs] = execForm('HEALTHCHECK --interval=30s --timeout=3s CMD');
  assert.ok(fs.existsSync(shell), `${shell} exists on Debian`);
  const check = () =>
    spawnSync(shell, hcArgs.map((a) => a.replaceAll('127.0.0.1/8025', `127.0.0.1/${port}`)), {
      encoding: 'utf8',
      timeout: 5000,
    });
  const healthy = check();
  assert.equal(healthy.status, 0, `healthcheck failed on a running relay: ${healthy.stderr}`);
  // ...and unhealthy once it is gone.
  proc.kill('SIGTERM');
  const end = await exited;
  assert.equal(end.code, 0, `the relay stops cleanly on the image's STOPSIGNAL:\n${log}`);
  assert.notEqual(check().status, 0, 'healthcheck passes with no relay');
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
});
