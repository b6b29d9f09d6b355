// Two relays on one PostgreSQL spool (issue 14, docs/scale-out.md), real
// processes only: a private PostgreSQL (support/pg.mjs), two `postwire serve
// --spool postgres://… --spool-lease 3s` with their own DATA_DIRs, one plain
// SMTP test server (relay/tests/smtp_support/smtpd.py, mode pipelining) and
// the npm RelayClient.
//
// The SMTP server can hold its replies: while the hold file exists, each
// message is stored at its end of data and the 250 is held back (--hold-file),
// so a relay killed meanwhile leaves at the server a message it never heard
// about: the one case where at-least-once gives a duplicate. Each relay sends
// its own EHLO name, which the server writes beside each message, so the test
// knows which relay carried each copy.
//
// What is asserted, and why it is honest:
// - kill -9: every message the relays accepted arrives; a message arriving
//   twice has one copy carried by the killed relay A (the other relay never
//   sends a message A did not hold), at most twice, and at most
//   2 × A's workers of them (runner.rs: a worker has at most one attempt on
//   the wire and one outcome not yet committed); every message A had at the
//   server with its reply held does arrive twice (B took over the lease). The
//   client of A, reconnected (through a balancer) to B, learns every final
//   status; resubmitting an id accepted by A through B is a duplicate and
//   nothing is sent again.
// - SIGSTOP past the lease: B delivers, A's late outcome is refused ("lease
//   lost" in A's log), the database keeps B's outcome.
// - a crash restart of PostgreSQL mid-bulk (`pg_ctl -m immediate stop`, kept
//   down until a submission to each relay has been refused, then started
//   again: restartImmediate() with an outage long enough to see refusals):
//   submissions while it is down are refused with `storage`, every accepted
//   message arrives, the relays reconnect without being restarted (the
//   refused ones, sent again, are accepted).
// - the kill test first leaves a gap in the event sequence, as a relay
//   killed inside a transaction or a database crash does: the events after
//   it must still reach the clients (spool/pg/follow.rs).
//
// Run: POSTWIRE_BIN=target/debug/postwire POSTWIRE_VENV=.venv node --test tests/js/relay_scaleout.test.mjs

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';

import { ROOT, WebSocket, addToken, bin, message, messageIdOf, startRelay, tmpdir, waitFor } from '../e2e/harness.mjs';
import { RelayClient } from '../../wasm/js/relay-client.js';
import { startPg } from './support/pg.mjs';

const LEASE = '3s';
/** SMTP connections (and so delivery workers) per relay. */
const CONNECTIONS = 4;
const ENVELOPE = { mailFrom: 'ana@example.com', rcptTo: ['bob@example.org'] };

/** What a test started (clients, relays, SMTP server): stopped after each test, last first. */
const cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning
    }
  }
});

/** Every relay started: none may panic, whatever was done to it. */
const relays = [];
afterEach(() => {
  for (const r of relays.splice(0)) assert.doesNotMatch(r.log(), /panicked/, `${r.name} panicked:\n${r.log().slice(-4000)}`);
});

/** One PostgreSQL for the file, a database per test. */
let pg;
before(async () => {
  pg = await startPg();
});
after(() => pg?.stop());

/**
 * Tokens shared by both relays: added once with `postwire token add --spool
 * URL`, read by every relay from the database. (TOKENS_IN_DATABASE = false
 * writes the same tokens.toml into every relay's DATA_DIR instead.)
 */
const TOKENS_IN_DATABASE = true;
function sharedToken(name, spoolUrl, dataDirs) {
  for (const d of dataDirs) fs.mkdirSync(d, { recursive: true });
  if (TOKENS_IN_DATABASE) {
    const args = ['token', 'add', name, '--spool', spoolUrl, '--allow-from', '@example.com'];
    const r = spawnSync(bin(), args, { encoding: 'utf8', env: { ...process.env, POSTWIRE_SPOOL_PASSWORD: pg.password } });
    if (r.status !== 0) throw new Error(`postwire ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout.trim();
  }
  const secret = addToken(dataDirs[0], name, ['@example.com']);
  for (const d of dataDirs.slice(1)) fs.copyFileSync(path.join(dataDirs[0], 'tokens.toml'), path.join(d, 'tokens.toml'));
  return secret;
}

/** The plain SMTP test server that can hold its replies (see the top of this file). */
async function startSink(dir) {
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const py = path.join(process.env.POSTWIRE_VENV ?? '', 'bin', 'python');
  if (!process.env.POSTWIRE_VENV || !fs.existsSync(py)) throw new Error('POSTWIRE_VENV is not set to a venv with aiosmtpd: run scripts/setup.sh');
  const out = path.join(dir, 'received');
  const holdFile = path.join(dir, 'hold');
  const proc = spawn(py, [path.join(ROOT, 'relay/tests/smtp_support/smtpd.py'), 'pipelining', out, '--hold-file', holdFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  cleanups.push(() => {
    proc.kill('SIGKILL');
    return exited;
  });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`smtpd did not start: ${stderr}`)), 15000);
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = /PORT (\d+)\n/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`smtpd exited (${code}): ${stderr}`)));
  });
  return {
    port,
    url: (helo) => `smtp://127.0.0.1:${port}?security=none&connections=${CONNECTIONS}&helo=${helo}`,
    hold: () => fs.writeFileSync(holdFile, ''),
    release: () => fs.rmSync(holdFile, { force: true }),
    /** Messages stored so far. */
    count: () => (fs.existsSync(out) ? fs.readdirSync(out).filter((f) => f.endsWith('.eml')).length : 0),
    /** Replies held now, by EHLO name. */
    held() {
      try {
        return JSON.parse(fs.readFileSync(path.join(out, 'held'), 'utf8'));
      } catch {
        return {};
      }
    },
    /** Every stored message: { seq, id (from Message-ID), helo, held }. */
    records() {
      if (!fs.existsSync(out)) return [];
      return fs
        .readdirSync(out)
        .filter((f) => f.endsWith('.eml'))
        .sort()
        .map((f) => {
          const meta = JSON.parse(fs.readFileSync(path.join(out, f.replace(/\.eml$/, '.json')), 'utf8'));
          return { seq: Number(f.slice(0, 6)), id: messageIdOf(fs.readFileSync(path.join(out, f))), helo: meta.helo, held: meta.held };
        });
    },
  };
}

/** Copies by id: id -> [record, ...]. */
function copiesById(records) {
  const map = new Map();
  for (const r of records) {
    if (!map.has(r.id)) map.set(r.id, []);
    map.get(r.id).push(r);
  }
  return map;
}

/** A relay on the shared spool, delivering to `sink` with EHLO `name`. */
async function relay(name, dataDir, spoolUrl, sink) {
  const r = await startRelay({
    dataDir,
    args: ['--spool', spoolUrl, '--spool-lease', LEASE, '--smtp', sink.url(name)],
    env: { POSTWIRE_SPOOL_PASSWORD: pg.password, POSTWIRE_LOG: 'info' },
  });
  r.name = name;
  relays.push(r);
  cleanups.push(() => {
    if (r.proc.exitCode === null && r.proc.signalCode === null) {
      r.proc.kill('SIGCONT');
      return r.kill('SIGKILL');
    }
  });
  return r;
}

/** Both relays (started together: the migrations must be safe at once) on a fresh database. */
async function twoRelays(db, sink, { startB = true } = {}) {
  const dir = tmpdir(`scaleout-${db}`);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const spoolUrl = await pg.createDatabase(db);
  const dirA = path.join(dir, 'a');
  const dirB = path.join(dir, 'b');
  const token = sharedToken('app', spoolUrl, [dirA, dirB]);
  const [a, b] = await Promise.all([relay('relay-a', dirA, spoolUrl, sink), startB ? relay('relay-b', dirB, spoolUrl, sink) : null]);
  return { a, b, token, spoolUrl, startB: () => relay('relay-b', dirB, spoolUrl, sink) };
}

/** A TCP balancer whose target can change (a client reconnecting lands on the new one). */
async function balancer(targetPort) {
  let target = targetPort;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
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
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const b = {
    url: `ws://127.0.0.1:${server.address().port}/v1/submit`,
    to(port) {
      target = port;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  cleanups.push(() => b.close());
  return b;
}

function client(url, token) {
  const c = new RelayClient(url, { token, WebSocket, maxReconnectDelay: 500 });
  cleanups.push(() => c.close());
  return c;
}

function bulk(prefix, n, size = 700) {
  return function* () {
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${i}`;
      yield { message: message(id, { size }), id, envelope: ENVELOPE };
    }
  };
}

/** Resolves with `p`, or rejects after `ms` naming `what` (a bound, not a timing assertion). */
function within(what, ms, p) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

async function sql(db, q) {
  return pg.psql(db, q);
}

const quote = (s) => `'${String(s).replaceAll("'", "''")}'`;

test('kill -9 of a relay holding leases: nothing accepted is lost, duplicates only among what it held', { timeout: 150000 }, async () => {
  const started = Date.now();
  const sink = await startSink(tmpdir('scaleout-kill'));
  const { a, b, token } = await twoRelays('kill', sink);
  // A gap in the event sequence before the 2,000-odd events of the bulk, as
  // a relay killed inside a transaction or a database crash leaves one:
  // every relay must keep following past it (follow.rs reads on after a full
  // batch; it used to read the same batch again until the gap was 30 s old).
  await sql('kill', "SELECT nextval(pg_get_serial_sequence('postwire_events', 'seq'))");
  const lb = await balancer(a.port);
  const cA = client(lb.url, token); // through the balancer: it moves to B when A dies
  const cB = client(b.url, token);
  let reconnects = 0;
  cA.on('reconnect', () => reconnects++);

  // 500 + 500, unique ids; the server starts holding its replies once 200 arrived.
  let bulkDone = false;
  const holding = waitFor('200 messages at the server', () => bulkDone || sink.count() >= 200, 60000, 20).then(() => sink.hold());
  const [resA, resB] = await within('1,000 accepted', 60000, Promise.all([cA.sendBulk(bulk('kill-a', 500)()), cB.sendBulk(bulk('kill-b', 500)())]));
  bulkDone = true;
  await holding;
  const results = [...resA, ...resB];
  assert.equal(results.length, 1000);
  assert.deepEqual(results.filter((r) => !r.ok).map((r) => `${r.id}: ${r.error?.code} ${r.error?.message}`), []);
  const accepted = new Set(results.map((r) => r.id));
  const tAccepted = Date.now();

  // A holds leases: each of its workers has a message at the server, reply held.
  await waitFor(`relay A holding ${CONNECTIONS} transfers`, () => (sink.held()['relay-a'] ?? 0) >= CONNECTIONS, 30000, 20);
  lb.to(b.port);
  await a.kill('SIGKILL');
  const heldByA = sink.records().filter((r) => r.helo === 'relay-a' && r.held).map((r) => r.id);
  assert.ok(heldByA.length >= CONNECTIONS, `A had ${heldByA.length} messages with their reply held`);
  sink.release();

  // Every final status reaches both clients; A's through B.
  const finals = await within(
    'every final status',
    90000,
    Promise.all(results.map((r) => r.message.done)),
  );
  const tFinal = Date.now();
  for (const f of finals) assert.equal(f[0].state, 'delivered', JSON.stringify(f));
  assert.ok(reconnects >= 1, 'the client of A reconnected');

  // At the server: every accepted message; duplicates only among A's.
  const copies = copiesById(sink.records());
  for (const id of accepted) assert.ok(copies.has(id), `${id} was accepted and never arrived`);
  const dups = [...copies].filter(([, cs]) => cs.length > 1);
  for (const [id, cs] of dups) {
    assert.ok(accepted.has(id), `${id} arrived but was never accepted`);
    assert.equal(cs.length, 2, `${id} arrived ${cs.length} times`);
    assert.ok(cs.some((c) => c.helo === 'relay-a'), `${id} arrived twice, though A never carried it: ${JSON.stringify(cs)}`);
  }
  assert.ok(dups.length <= 2 * CONNECTIONS, `${dups.length} duplicates; A had ${CONNECTIONS} workers`);
  for (const id of heldByA) assert.equal(copies.get(id).length, 2, `${id}: held at the server when A died, then sent again by B`);

  // A resubmission of an id A accepted, through B: a duplicate, nothing sent.
  const again = results.find((r) => r.id.startsWith('kill-a-') && copies.get(r.id).length === 1).id;
  const before = await sql('kill', `SELECT attempts FROM postwire_messages WHERE client_id = ${quote(again)}`);
  const cR = client(b.url, token);
  const dup = await cR.send(message(again, { size: 700 }), { id: again, envelope: ENVELOPE });
  assert.equal(dup.duplicate, true);
  const [st] = await within('the duplicate status', 10000, dup.done);
  assert.equal(st.state, 'delivered');
  assert.equal(await sql('kill', `SELECT count(*) FROM postwire_messages WHERE client_id = ${quote(again)}`), '1');
  assert.equal(await sql('kill', `SELECT attempts FROM postwire_messages WHERE client_id = ${quote(again)}`), before);
  assert.equal(await sql('kill', 'SELECT count(*) FROM postwire_deliveries WHERE NOT final'), '0');
  // A message sent after it is delivered; the duplicate still arrived once.
  const marker = await cR.send(message('kill-marker'), { id: 'kill-marker', envelope: ENVELOPE });
  await within('the marker', 15000, marker.done);
  await waitFor('the marker at the server', () => copiesById(sink.records()).has('kill-marker'), 10000);
  assert.equal(copiesById(sink.records()).get(again).length, 1, `${again} was sent again`);

  console.log(
    `# kill test: 1,000 accepted in ${tAccepted - started} ms, all final ${tFinal - tAccepted} ms later; ` +
      `${heldByA.length} held by A, ${dups.length} duplicates, ${reconnects} reconnects`,
  );
});

test('SIGSTOP past the lease: the other relay delivers, the late outcome is refused', { timeout: 60000 }, async () => {
  const sink = await startSink(tmpdir('scaleout-stop'));
  sink.hold();
  const { a, token, startB } = await twoRelays('stop', sink, { startB: false });
  const cA = client(a.url, token);
  await cA.send(message('stop-1'), { id: 'stop-1', envelope: ENVELOPE });
  await waitFor('A holding the transfer', () => (sink.held()['relay-a'] ?? 0) >= 1, 15000, 20);
  const b = await startB(); // started now, so that A is the one holding the lease
  a.proc.kill('SIGSTOP');
  // A's 250 waits in its socket; B takes the lease once it expired.
  sink.release();
  const status = () => sql('stop', "SELECT d.state::text FROM postwire_deliveries d JOIN postwire_messages m ON m.id = d.message_id WHERE m.client_id = 'stop-1'");
  await waitFor('B delivering it', async () => (await status()).includes('delivered'), 20000, 100);
  const copies = sink.records().filter((r) => r.id === 'stop-1');
  assert.deepEqual(copies.map((c) => c.helo), ['relay-a', 'relay-b']);
  const bQueued = new RegExp(`queued as ${String(copies[1].seq).padStart(6, '0')}`);
  assert.match(JSON.parse(await status()).response, bQueued);

  a.proc.kill('SIGCONT');
  // runner.rs: the outcome A settles is refused by the fence and logged.
  await waitFor('"lease lost" in A\'s log', () => /lease lost: this attempt's outcome was refused/.test(a.log()), 20000);
  assert.match(a.log(), /WARN.*stop-1.*lease lost|WARN.*lease lost.*stop-1/);
  const after = JSON.parse(await status());
  assert.equal(after.state, 'delivered');
  assert.match(after.response, bQueued, "the database keeps B's outcome");
  const events = await sql('stop', "SELECT relay FROM postwire_events WHERE client_id = 'stop-1' AND kind::text LIKE '%elivered%'");
  assert.equal(events.split('\n').length, 1, `one delivered event: ${events}`);
  assert.ok(events.includes(`:${b.proc.pid}:`), `the delivered event is B's: ${events}`);
  assert.equal(a.proc.exitCode, null, 'A is still running');
});

test('a crash restart of PostgreSQL mid-bulk: refused while down, nothing accepted lost, relays reconnect', { timeout: 90000 }, async () => {
  const t0 = Date.now();
  const sink = await startSink(tmpdir('scaleout-pgcrash'));
  const { a, b, token } = await twoRelays('pgcrash', sink);
  const cA = client(a.url, token);
  const cB = client(b.url, token);
  let accepted = 0;
  const onProgress = (p) => (accepted = Math.max(accepted, p.accepted));
  const bulkA = cA.sendBulk(bulk('crash-a', 100)(), { onProgress });
  const bulkB = cB.sendBulk(bulk('crash-b', 100)(), { onProgress });

  await waitFor('40 accepted', () => accepted >= 40, 30000, 10);
  const tDown = Date.now();
  await pg.down('immediate');
  // While it is down: refused with `storage`, never accepted.
  for (const [name, c] of [['a', cA], ['b', cB]]) {
    await assert.rejects(
      within('a refusal', 30000, c.send(message(`crash-down-${name}`), { id: `crash-down-${name}`, envelope: ENVELOPE })),
      (e) => e.code === 'storage',
    );
  }
  await pg.up();
  const tUp = Date.now();

  const results = [...(await within('the bulk', 60000, bulkA)), ...(await within('the bulk', 60000, bulkB))];
  const refused = results.filter((r) => !r.ok);
  for (const r of refused) assert.equal(r.error.code, 'storage', `${r.id}: ${r.error.code} ${r.error.message}`);
  // The refused ones again, now that the database is back: the relays reconnected by themselves.
  const retried = await Promise.all(
    refused.map((r) => (r.id.startsWith('crash-a-') ? cA : cB).send(message(r.id, { size: 700 }), { id: r.id, envelope: ENVELOPE })),
  );
  const probes = await Promise.all(['a', 'b'].map((n) => (n === 'a' ? cA : cB).send(message(`crash-up-${n}`), { id: `crash-up-${n}`, envelope: ENVELOPE })));
  const tBack = Date.now();
  const all = [...results.filter((r) => r.ok).map((r) => r.message), ...retried, ...probes];
  assert.equal(all.length, 202);
  const finals = await within('every final status', 60000, Promise.all(all.map((m) => m.done)));
  for (const f of finals) assert.equal(f[0].state, 'delivered', JSON.stringify(f));
  const copies = copiesById(sink.records());
  for (const m of all) assert.ok(copies.has(m.id), `${m.id} was accepted and never arrived`);
  // Accepted before the crash means committed: every accepted id is in the database.
  const inDb = Number(await sql('pgcrash', "SELECT count(*) FROM postwire_messages WHERE client_id LIKE 'crash-%'"));
  assert.ok(inDb >= 202, `${inDb} messages in the database`);
  for (const r of [a, b]) assert.equal(r.proc.exitCode, null, `${r.name} kept running`);
  console.log(
    `# pg crash: started ${tDown - t0} ms, down for ${tUp - tDown} ms, every refused one accepted ${tBack - tUp} ms later, ` +
      `all final ${Date.now() - tBack} ms after; ${refused.length} of 200 refused while down (sent again), ` +
      `${[...copies.values()].filter((c) => c.length > 1).length} duplicates`,
  );
});
