// Load generator of the soak benchmark: COUNT messages through the relay over
// CONNECTIONS WebSocket connections speaking postwire.v1, paced along an
// "hour" of traffic compressed into DURATION seconds (12 slots of 5 minutes,
// a morning ramp, a peak, a burst and a quiet end), with a mix of sizes and
// of recipients that the soak's SMTP server (sink.mjs) defers or refuses.
// Waits until every recipient of every message is final (delivered or
// failed), checks each outcome against what its recipient scripted, and
// prints one JSON line of figures.
//
//   node bench/soak/load.mjs URL TOKEN
//
// Environment (defaults in brackets):
//   COUNT [100000]       messages
//   CONNECTIONS [8]      WebSocket connections
//   DURATION [600]       seconds the hour is compressed into (the schedule;
//                        a relay slower than it simply runs late)
//   MIX [90:9.5:0.5]     percent of small (5-20 KB), medium (100 KB-1 MB,
//                        log-uniform) and large (4.5-5.5 MB) messages
//   DEFER [4]            percent of messages whose one recipient answers 451
//                        one to three times, then 250
//   FAIL [3]             percent of messages whose one recipient answers 550
//   MIXED [2]            percent with three recipients: one plain, one
//                        deferred, one refused
//   WINDOW [16]          submissions a connection keeps unanswered (at most
//                        the relay's window), and at most WINDOW_MB [32] MB
//   SEED [1]             the pseudo-random sequence of sizes and recipients
//   PROGRESS_FILE        a line of counts is appended here every 5 s
//   TIMEOUT [3 x DURATION + 600]  seconds after which the run gives up (the
//                        figures so far are printed, exit status 1)

import { appendFileSync } from 'node:fs';
import { WebSocket } from '../../tests/e2e/node_modules/ws/wrapper.mjs';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node load.mjs URL TOKEN');
  process.exit(2);
}
const env = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);
const COUNT = env('COUNT', 100000);
const CONNECTIONS = env('CONNECTIONS', 8);
const DURATION = env('DURATION', 600);
const [P_SMALL, P_MEDIUM] = (process.env.MIX ?? '90:9.5:0.5').split(':').map(Number);
const P_DEFER = env('DEFER', 4);
const P_FAIL = env('FAIL', 3);
const P_MIXED = env('MIXED', 2);
const WINDOW = env('WINDOW', 16);
const WINDOW_BYTES = env('WINDOW_MB', 32) * 1e6;
const TIMEOUT = env('TIMEOUT', 3 * DURATION + 600);
const RUN = Date.now().toString(36);

// mulberry32: a small seeded generator, so that two runs send the same mix.
let seed = env('SEED', 1) >>> 0;
function rand() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// One body of base64-looking lines (76 characters + CRLF), sliced per message.
const LINE = 78;
const BODY = (() => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const lines = Math.ceil(5.6e6 / LINE);
  const b = Buffer.alloc(lines * LINE);
  for (let l = 0; l < lines; l++) {
    for (let c = 0; c < 76; c++) b[l * LINE + c] = alphabet.charCodeAt((rand() * 64) | 0);
    b[l * LINE + 76] = 13;
    b[l * LINE + 77] = 10;
  }
  return b;
})();

// The plan of each message: size class, size and recipients, drawn up front
// (a few MB for 100,000 messages); the bytes are made when it is sent.
const plan = [];
const expect = { delivered: 0, failed: 0 };
let plannedBytes = 0;
for (let i = 0; i < COUNT; i++) {
  const r = rand() * 100;
  let size;
  if (r < P_SMALL) size = 5000 + rand() * 15000;
  else if (r < P_SMALL + P_MEDIUM) size = 100e3 * Math.pow(10, rand());
  else size = 4.5e6 + rand() * 1e6;
  size = Math.round(size);
  const k = rand() * 100;
  const defer = () => `defer${1 + Math.floor(rand() * 3)}-${RUN}-${i}@example.net`;
  let rcpts;
  if (k < P_DEFER) rcpts = [defer()];
  else if (k < P_DEFER + P_FAIL) rcpts = [`fail-${RUN}-${i}@example.net`];
  else if (k < P_DEFER + P_FAIL + P_MIXED)
    rcpts = [`u${i}@example.org`, defer(), `fail-${RUN}-${i}@example.net`];
  else rcpts = [`u${i}@example.org`];
  for (const a of rcpts) expect[a.startsWith('fail-') ? 'failed' : 'delivered']++;
  plan.push({ size, rcpts });
  plannedBytes += size;
}

// The schedule: when message i is due, from the hour's shape (weights of
// twelve 5-minute slots, spread evenly within each slot).
const SLOTS = [2, 3, 5, 8, 10, 9, 7, 16, 8, 5, 3, 2];
const total = SLOTS.reduce((a, b) => a + b, 0);
const due = new Float64Array(COUNT);
{
  let i = 0;
  for (let s = 0; s < SLOTS.length; s++) {
    const n = s === SLOTS.length - 1 ? COUNT - i : Math.round((COUNT * SLOTS[s]) / total);
    for (let j = 0; j < n && i < COUNT; j++, i++) {
      due[i] = ((s + j / n) * DURATION * 1000) / SLOTS.length;
    }
  }
}

function makeMessage(i) {
  const { size, rcpts } = plan[i];
  const head = Buffer.from(
    `From: <soak@example.com>\r\nTo: ${rcpts.map((a) => `<${a}>`).join(', ')}\r\n` +
      `Subject: soak ${i}\r\nMessage-ID: <${RUN}-${i}@soak.test>\r\n` +
      `Date: Sat, 05 Dec 2026 03:00:00 +0000\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=us-ascii\r\n\r\n`,
  );
  const lines = Math.max(1, Math.round((size - head.length) / LINE));
  const offset = Math.floor(rand() * (BODY.length / LINE - lines)) * LINE;
  return Buffer.concat([head, BODY.subarray(offset, offset + lines * LINE)]);
}

const start = performance.now();
const latency = new Float64Array(COUNT);
const sentAt = new Float64Array(COUNT);
const pending = plan.map((p) => p.rcpts.length); // recipients not yet final
let next = 0;
let accepted = 0;
let rejected = 0;
let final = 0; // messages with every recipient final
let delivered = 0;
let failed = 0;
let deferredEvents = 0;
let unexpected = 0;
let bytesSent = 0;
let lastAccepted = 0;
let lastFinal = 0;
let behind = 0; // ms the last submit was later than its schedule
const problems = [];

const settle = (i, now) => {
  if (--pending[i] === 0) {
    final++;
    lastFinal = now;
  }
};

let finish;
const finished = new Promise((resolve) => {
  finish = resolve;
});

function connection() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['postwire.v1'], { maxPayload: 64 << 20 });
    let window = 1;
    let inflight = 0;
    let inflightBytes = 0;
    const sizes = new Map();
    let timer = null;
    const pump = () => {
      timer = null;
      const now = performance.now() - start;
      while (inflight < window && inflightBytes < WINDOW_BYTES && next < COUNT) {
        if (due[next] > now) {
          timer = setTimeout(pump, Math.max(1, due[next] - now));
          return;
        }
        const i = next++;
        behind = now - due[i];
        const bytes = makeMessage(i);
        inflight++;
        inflightBytes += bytes.length;
        sizes.set(i, bytes.length);
        sentAt[i] = performance.now();
        bytesSent += bytes.length;
        ws.send(
          JSON.stringify({
            type: 'submit',
            id: `m${i}`,
            size: bytes.length,
            envelope: { mailFrom: 'soak@example.com', rcptTo: plan[i].rcpts },
          }),
        );
        ws.send(bytes);
      }
    };
    const answered = (i) => {
      inflight--;
      inflightBytes -= sizes.get(i) ?? 0;
      sizes.delete(i);
      if (!timer) pump();
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (final < COUNT) reject(new Error(`connection closed (${code}) before the end`));
      resolve();
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const f = JSON.parse(data.toString());
      const now = performance.now();
      const i = f.id ? Number(f.id.slice(1)) : -1;
      switch (f.type) {
        case 'ready':
          window = Math.min(f.window, WINDOW);
          pump();
          break;
        case 'accepted':
          latency[i] = now - sentAt[i];
          accepted++;
          lastAccepted = now;
          answered(i);
          break;
        case 'rejected':
          rejected++;
          problems.push(`rejected m${i}: ${f.code} ${f.message}`);
          pending[i] = 0;
          final++;
          answered(i);
          break;
        case 'delivered':
          delivered++;
          if (f.rcpt.startsWith('fail-')) {
            unexpected++;
            problems.push(`m${i} ${f.rcpt} delivered, expected failed`);
          }
          settle(i, now);
          break;
        case 'failed':
          failed++;
          if (!f.rcpt.startsWith('fail-')) {
            unexpected++;
            problems.push(`m${i} ${f.rcpt} failed: ${f.reason}`);
          }
          settle(i, now);
          break;
        case 'deferred':
          deferredEvents++;
          break;
        case 'error':
          reject(new Error(`${f.code}: ${f.message}`));
          break;
        default:
          break;
      }
      if (final >= COUNT) finish();
    });
    closers.push(() => ws.close());
  });
}

const progress = setInterval(() => {
  const line = {
    t: Math.round((performance.now() - start) / 1000),
    submitted: next,
    accepted,
    final,
    delivered,
    failed,
    deferred_events: deferredEvents,
    behind_s: Math.round(behind / 1000),
  };
  if (process.env.PROGRESS_FILE) appendFileSync(process.env.PROGRESS_FILE, JSON.stringify(line) + '\n');
}, 5000);

const closers = [];
const conns = [];
for (let c = 0; c < CONNECTIONS; c++) conns.push(connection());
// Every connection must stay up until the end; the first failure ends the run.
let timedOut = false;
const giveUp = new Promise((resolve) =>
  setTimeout(() => {
    timedOut = true;
    problems.push(`timed out after ${TIMEOUT} s: ${COUNT - final} messages not final`);
    resolve();
  }, TIMEOUT * 1000).unref(),
);
await Promise.race([finished, giveUp, ...conns.map((p) => p.then(() => new Promise(() => {})))]);
clearInterval(progress);
for (const close of closers) close();

const secs = (ms) => ms / 1000;
const sorted = Array.from(latency.filter((x) => x > 0)).sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const result = {
  messages: COUNT,
  connections: CONNECTIONS,
  schedule_s: DURATION,
  mix: `${P_SMALL}:${P_MEDIUM}:${Math.round((100 - P_SMALL - P_MEDIUM) * 100) / 100}`,
  bytes: bytesSent,
  planned_bytes: plannedBytes,
  accepted,
  rejected,
  recipients_delivered: delivered,
  recipients_failed: failed,
  expected_delivered: expect.delivered,
  expected_failed: expect.failed,
  deferred_events: deferredEvents,
  unexpected,
  timed_out: timedOut,
  last_accepted_s: Number(secs(lastAccepted - start).toFixed(1)),
  last_final_s: Number(secs(lastFinal - start).toFixed(1)),
  accepted_per_s: Math.round(accepted / secs(lastAccepted - start)),
  accepted_mb_per_s: Number((bytesSent / 1e6 / secs(lastAccepted - start)).toFixed(1)),
  accept_ms_p50: Number(pct(50).toFixed(1)),
  accept_ms_p99: Number(pct(99).toFixed(1)),
  accept_ms_max: Number((sorted[sorted.length - 1] ?? 0).toFixed(1)),
};
console.log(JSON.stringify(result));
for (const p of problems.slice(0, 20)) console.error(p);
if (timedOut || rejected || unexpected || delivered !== expect.delivered || failed !== expect.failed) process.exitCode = 1;
