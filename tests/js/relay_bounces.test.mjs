// Bounces the whole way from JavaScript (docs/bounces.md): the JS
// RelayClient -> `postwire serve --bounce-domain --inbound-smtp` -> the
// STARTTLS+AUTH test SMTP server (250); then a DSN to the VERP return path
// the server saw, sent to the inbound port by a small SMTP client here. The
// client gets `bounced`, and the next message to that recipient is refused
// with code `suppressed`.
// Run: POSTWIRE_BIN=target/debug/postwire POSTWIRE_VENV=.venv node --test tests/js/relay_bounces.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';

import { WebSocket, addToken, message, startRelay, startSmtpd, tmpdir, waitFor } from '../e2e/harness.mjs';
import { RelayClient } from '../../wasm/js/relay-client.js';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Sends `data` from <> to `rcpt` over SMTP; resolves with every reply line. */
function smtpSend(port, rcpt, data) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const script = ['EHLO mx.example.org', 'MAIL FROM:<>', `RCPT TO:<${rcpt}>`, 'DATA', `${data.replace(/\r?\n\./g, '\r\n..')}\r\n.`, 'QUIT'];
    const replies = [];
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        replies.push(line);
        if (line[3] === '-') continue;
        if (line.startsWith('5') || line.startsWith('4')) {
          sock.end();
          return;
        }
        const next = script.shift();
        if (next !== undefined) sock.write(`${next}\r\n`);
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(replies));
  });
}

test('a DSN to the inbound port reaches the JS client as bounced, then the recipient is suppressed', async () => {
  const dir = tmpdir('bounces');
  const smtpd = await startSmtpd(dir);
  cleanups.push(() => smtpd.stop());
  const dataDir = path.join(dir, 'data');
  const token = addToken(dataDir, 'app', ['@example.com']);
  const relay = await startRelay({
    dataDir,
    smtpd,
    args: ['--bounce-domain', 'bounces.example.com', '--inbound-smtp', '127.0.0.1:0'],
  });
  cleanups.push(() => relay.kill());
  const inbound = Number(/inbound SMTP listening on [0-9.]+:(\d+)/.exec(relay.log())[1]);

  const c = new RelayClient(relay.url, { token, WebSocket });
  cleanups.push(() => c.close());
  const bounced = new Promise((resolve) => c.on('bounced', resolve));
  const msg = await c.send(message('b1'), { envelope: { mailFrom: 'ana@example.com', rcptTo: ['bob@example.org'] } });
  const [result] = await msg.done;
  assert.equal(result.state, 'delivered');
  await waitFor('the message at the SMTP server', () => smtpd.received().length > 0);
  const json = fs.readdirSync(smtpd.out).filter((f) => f.endsWith('.json')).sort().at(-1);
  const returnPath = JSON.parse(fs.readFileSync(path.join(smtpd.out, json), 'utf8')).mailFrom;
  assert.match(returnPath, /^bounces\+[0-9a-f]{16}\.[0-9a-f]{8}@bounces\.example\.com$/);

  const dsn = [
    'From: MAILER-DAEMON@mx.example.org',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
    '',
    '--b',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.org',
    '',
    'Final-Recipient: rfc822; bob@example.org',
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 no such user',
    '',
    '--b--',
  ].join('\r\n');
  const replies = await smtpSend(inbound, returnPath, dsn);
  assert.ok(replies.includes('250 2.0.0 ok'), replies.join('\n'));
  const e = await bounced;
  assert.deepEqual(
    { id: e.id, rcpt: e.rcpt, bounce: e.bounce, status: e.status },
    { id: msg.id, rcpt: 'bob@example.org', bounce: 'hard', status: '5.1.1' },
  );

  await assert.rejects(
    c.send(message('b2'), { envelope: { mailFrom: 'ana@example.com', rcptTo: ['bob@example.org'] } }),
    (err) => err.code === 'suppressed' && /bob@example\.org/.test(err.message),
  );
});
