// Test harness of the relay's end-to-end tests: starts the real `postwire`
// binary ($POSTWIRE_BIN), the STARTTLS+AUTH test SMTP server of the SMTP
// tests (relay/tests/smtp_support/smtpd.py, aiosmtpd in $POSTWIRE_VENV), a
// test CA made with openssl, and a TCP proxy that can take the upstream down.
// Everything listens on 127.0.0.1 and is stopped by the test that started it.
// A missing tool is an error, never a skip.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { WebSocket } from './node_modules/ws/wrapper.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through scripts/test.sh (or set it)`);
  return v;
}

export function bin() {
  const b = required('POSTWIRE_BIN');
  if (!fs.existsSync(b)) throw new Error(`POSTWIRE_BIN=${b} does not exist: cargo build -p postwire-relay`);
  return b;
}

export function tmpdir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `pw-${prefix}-`));
}

/** A test CA and a certificate for 127.0.0.1/localhost signed by it (rustls refuses a self-signed leaf). */
export function makeCerts(dir) {
  const run = (args) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error) throw new Error(`openssl is needed (apt-get install openssl): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=postwire test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
}

function readLine(stream, pattern, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${pattern} in ${timeoutMs} ms; got:\n${buf}`)), timeoutMs);
    const onData = (d) => {
      buf += d.toString();
      const m = pattern.exec(buf);
      if (m) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve({ match: m, text: buf });
      }
    };
    stream.on('data', onData);
  });
}

/** The STARTTLS + AUTH test server. Messages land in `out` as NNNNNN.eml + .json. */
export async function startSmtpd(dir, { user = 'relay', password = 'pa55word' } = {}) {
  const venv = required('POSTWIRE_VENV');
  const py = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(py)) throw new Error(`${py} missing: run scripts/setup.sh`);
  const certs = makeCerts(dir);
  const out = path.join(dir, 'received');
  const script = path.join(ROOT, 'relay/tests/smtp_support/smtpd.py');
  const proc = spawn(py, [script, 'secure', out, '--cert', certs.cert, '--key', certs.key, '--user', user, '--password', password], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  const { match } = await readLine(proc.stdout, /PORT (\d+)/, 'smtpd').catch((e) => {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\nstderr: ${stderr}`);
  });
  const port = Number(match[1]);
  return {
    port,
    out,
    ca: certs.ca,
    user,
    password,
    url: (p = port, connections = 4) => `smtp://${user}@127.0.0.1:${p}?security=starttls&connections=${connections}`,
    received() {
      if (!fs.existsSync(out)) return [];
      return fs.readdirSync(out).filter((f) => f.endsWith('.eml')).sort().map((f) => fs.readFileSync(path.join(out, f)));
    },
    peak() {
      const f = path.join(out, 'peak');
      return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0;
    },
    stop() {
      proc.kill('SIGKILL');
    },
  };
}

/** Adds a token with `postwire token add`; returns its secret. */
export function addToken(dataDir, name, allowFrom = ['@example.com'], extra = []) {
  const args = ['token', 'add', name, '--data-dir', dataDir, ...allowFrom.flatMap((a) => ['--allow-from', a]), ...extra];
  const r = spawnSync(bin(), args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`postwire ${args.join(' ')} failed: ${r.stderr}`);
  const secret = r.stdout.trim();
  if (!/^pw_[A-Za-z0-9_-]{43}$/.test(secret)) throw new Error(`unexpected secret output: ${r.stdout}`);
  return secret;
}

/** Starts `postwire serve`; resolves once it listens. */
export async function startRelay({ dataDir, listen = '127.0.0.1:0', smtpd, smtpUrl, args = [], env = {} }) {
  const full = ['serve', '--listen', listen, '--data-dir', dataDir, ...args];
  const childEnv = { ...process.env, POSTWIRE_LOG: 'info', ...env };
  if (smtpd) {
    full.push('--smtp', smtpUrl ?? smtpd.url(), '--ca-file', smtpd.ca);
    childEnv.POSTWIRE_SMTP_PASSWORD = smtpd.password;
  }
  const proc = spawn(bin(), full, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv });
  let log = '';
  proc.stderr.on('data', (d) => {
    log += d;
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const started = readLine(proc.stderr, /postwire relay listening on ([0-9.]+):(\d+)/, 'relay');
  const { match } = await Promise.race([
    started,
    exited.then((e) => {
      throw new Error(`relay exited (${JSON.stringify(e)}) before listening:\n${log}`);
    }),
  ]);
  const port = Number(match[2]);
  return {
    proc,
    port,
    url: `ws://127.0.0.1:${port}/v1/submit`,
    http: `http://127.0.0.1:${port}`,
    log: () => log,
    exited,
    kill(signal = 'SIGKILL') {
      proc.kill(signal);
      return exited;
    },
  };
}

/** A TCP proxy in front of `target` that can refuse service (`down()`) and come back (`up()`). */
export async function startProxy(targetPort) {
  let isUp = true;
  const sockets = new Set();
  const server = net.createServer((client) => {
    if (!isUp) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    down() {
      isUp = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    up() {
      isUp = true;
    },
    close() {
      this.down();
      server.close();
    },
  };
}

export async function waitFor(what, fn, timeoutMs = 60000, everyMs = 50) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A message with a known Message-ID and body; `size` pads the body to about that many bytes. */
export function message(id, { from = 'ana@example.com', to = 'bob@example.org', size = 600 } = {}) {
  const head = `From: Ana <${from}>\r\nTo: <${to}>\r\nSubject: relay test ${id}\r\nMessage-ID: <${id}@postwire.test>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`;
  let body = `message ${id}\r\n.leading dot line, stuffed on the wire\r\n`;
  let n = 0;
  while (head.length + body.length < size) body += `line ${n++} of ${id} ${'x'.repeat(60)}\r\n`;
  return new TextEncoder().encode(head + body);
}

/** The Message-ID of received bytes. */
export function messageIdOf(bytes) {
  const m = /^Message-ID: <([^>]+)@postwire\.test>/im.exec(Buffer.from(bytes).toString('latin1'));
  return m ? m[1] : null;
}
