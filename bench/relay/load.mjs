// Load generator of the relay benchmark: CONNECTIONS WebSocket connections
// speak postwire.v1 directly (no client library between the clock and the
// socket), each keeping the relay's window full, and send COUNT messages of
// SIZE bytes in total. Prints one JSON line:
//   accept latency per message (submit frame written -> accepted frame read),
//   accepted/s (first submit -> last accepted), end-to-end/s (first submit ->
//   last `delivered` event, i.e. the upstream's 250 for every message).
//
//   node bench/relay/load.mjs URL[,URL...] TOKEN [COUNT=10000] [SIZE=10240] [CONNECTIONS=8]
//
// With several URLs (relays sharing one spool) connection c goes to
// URL[c % n]; messages are handed out from one shared counter, so each relay
// gets its connections' share. A client hears the events of the messages it
// submitted on the connection it submitted them on, whichever relay delivered
// them, so the run ends when every message's `delivered` event has arrived
// (counted once per message: a repeated event is counted apart).

import { WebSocket } from '../../tests/e2e/node_modules/ws/wrapper.mjs';

const [urlArg, token, countArg, sizeArg, connArg] = process.argv.slice(2);
if (!urlArg || !token) {
  console.error('usage: node load.mjs URL[,URL...] TOKEN [COUNT] [SIZE] [CONNECTIONS]');
  process.exit(2);
}
const urls = urlArg.split(',').filter(Boolean);
const COUNT = Number(countArg ?? 10000);
const SIZE = Number(sizeArg ?? 10240);
const CONNECTIONS = Number(connArg ?? 8);
const RUN = Date.now().toString(36);
// Submissions a connection keeps unanswered: the relay's window, or less (WINDOW=n).
const WINDOW = process.env.WINDOW ? Number(process.env.WINDOW) : Infinity;

function makeMessage(i) {
  const head =
    `From: <a@example.com>\r\nTo: <b@example.org>\r\nSubject: bench ${i}\r\n` +
    `Message-ID: <${RUN}-${i}@bench.test>\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\n`;
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij\r\n';
  let body = '';
  while (head.length + body.length + line.length <= SIZE) body += line;
  body += 'x'.repeat(Math.max(0, SIZE - head.length - body.length - 2)) + '\r\n';
  return Buffer.from(head + body);
}

const envelope = { mailFrom: 'a@example.com', rcptTo: ['b@example.org'] };
// Every message and its submit frame are built before the clock starts, so
// that the generator's own work (like smtp-source's) stays out of the figures.
const messages = Array.from({ length: COUNT }, (_, i) => makeMessage(i));
const frames = messages.map((bytes, i) =>
  JSON.stringify({ type: 'submit', id: `m${i}`, size: bytes.length, envelope }),
);

const latencies = new Float64Array(COUNT);
const submittedAt = new Float64Array(COUNT);
let next = 0;
let accepted = 0;
let delivered = 0;
let repeated = 0;
const deliveredSeen = new Uint8Array(COUNT);
let rejected = 0;
let firstSubmit = 0;
let lastAccepted = 0;
let lastDelivered = 0;

function connection(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['postwire.v1']);
    let window = 1;
    let inflight = 0;
    const pump = () => {
      while (inflight < window && next < COUNT) {
        const i = next++;
        inflight++;
        const t = performance.now();
        if (!firstSubmit) firstSubmit = t;
        submittedAt[i] = t;
        ws.send(frames[i]);
        ws.send(messages[i]);
      }
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.on('error', reject);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const f = JSON.parse(data.toString());
      const now = performance.now();
      switch (f.type) {
        case 'ready':
          window = Math.min(f.window, WINDOW);
          pump();
          break;
        case 'accepted': {
          const i = Number(f.id.slice(1));
          latencies[i] = now - submittedAt[i];
          accepted++;
          lastAccepted = now;
          inflight--;
          pump();
          break;
        }
        case 'rejected':
          rejected++;
          inflight--;
          console.error(`rejected ${f.id}: ${f.code} ${f.message}`);
          pump();
          break;
        case 'delivered': {
          const i = Number(f.id.slice(1));
          if (deliveredSeen[i]) {
            repeated++;
            break;
          }
          deliveredSeen[i] = 1;
          delivered++;
          lastDelivered = now;
          if (delivered + rejected >= COUNT) resolve();
          break;
        }
        case 'failed':
          console.error(`failed ${f.id}: ${f.reason}`);
          process.exitCode = 1;
          break;
        case 'error':
          reject(new Error(`${f.code}: ${f.message}`));
          break;
        default:
          break;
      }
      if (delivered + rejected >= COUNT) resolve();
    });
    const done = () => ws.close();
    closers.push(done);
  });
}

const closers = [];
const conns = [];
for (let c = 0; c < CONNECTIONS; c++) conns.push(connection(urls[c % urls.length]));
// A run that stops making progress is reported (which messages have no
// `delivered` event yet) and ended, instead of waiting for ever.
const STALL_MS = Number(process.env.STALL_MS ?? 60000);
let progress = -1;
let progressAt = performance.now();
const stalled = new Promise((resolve) => {
  const timer = setInterval(() => {
    const now = performance.now();
    if (accepted + delivered !== progress) {
      progress = accepted + delivered;
      progressAt = now;
      return;
    }
    if (now - progressAt < STALL_MS) return;
    clearInterval(timer);
    const missing = [];
    for (let i = 0; i < COUNT && missing.length < 20; i++) if (!deliveredSeen[i]) missing.push(`m${i}`);
    console.error(
      `stalled for ${Math.round((now - progressAt) / 1000)} s: ${accepted} accepted, ${delivered} delivered; ` +
        `no delivered event for ${COUNT - delivered} messages, e.g. ${missing.join(' ')} (run ${RUN})`,
    );
    process.exitCode = 1;
    resolve();
  }, 1000);
  timer.unref();
});
await Promise.race([...conns, stalled]);
for (const d of closers) d();

const sorted = Array.from(latencies.subarray(0, accepted)).sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const result = {
  messages: COUNT,
  size: SIZE,
  connections: CONNECTIONS,
  relays: urls.length,
  window_per_connection: Number.isFinite(WINDOW) ? WINDOW : 'relay',
  accepted,
  rejected,
  delivered,
  repeated_events: repeated,
  accepted_per_s: Math.round(accepted / ((lastAccepted - firstSubmit) / 1000)),
  end_to_end_per_s: Math.round(delivered / ((lastDelivered - firstSubmit) / 1000)),
  accept_ms_p50: Number(pct(50).toFixed(2)),
  accept_ms_p99: Number(pct(99).toFixed(2)),
  accept_ms_max: Number(sorted[sorted.length - 1].toFixed(2)),
};
console.log(JSON.stringify(result));
if (rejected || delivered < COUNT) process.exitCode = 1;
