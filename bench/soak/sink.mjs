// The soak benchmark's SMTP server: accepts every message like a sink (nothing
// is stored), except for recipients whose local part scripts a reply:
//   defer<K>-...@  answered 451 4.3.0 for the first K RCPTs of that address,
//                  then 250 (a server that is busy for a while);
//   fail-...@      answered 550 5.1.1 every time (no such user).
// Speaks ESMTP with PIPELINING and 8BITMIME, no TLS, no AUTH (loopback only).
//
//   node bench/soak/sink.mjs PORT_FILE STATS_FILE
//
// Listens on 127.0.0.1 at a free port and writes the port to PORT_FILE once it
// listens. On SIGTERM it writes its counts as JSON to STATS_FILE and exits:
// messages received, bytes, RCPT replies per kind, and the number of messages
// given to a recipient more than once (by Message-ID and recipient: the
// relay's at-least-once bound; a message retried for a deferred recipient is
// a new transaction for that recipient only, not a duplicate).

import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';

const [portFile, statsFile] = process.argv.slice(2);
if (!portFile || !statsFile) {
  console.error('usage: node sink.mjs PORT_FILE STATS_FILE');
  process.exit(2);
}

const DOT = Buffer.from('\r\n.\r\n');
const stats = {
  connections: 0,
  messages: 0,
  bytes: 0,
  rcpt_ok: 0,
  rcpt_deferred: 0,
  rcpt_failed: 0,
  duplicates: 0,
};
const rcptAttempts = new Map(); // defer address -> RCPTs seen
const seen = new Set(); // "Message-ID recipient" pairs received

function rcptReply(addr) {
  const local = addr.slice(0, addr.indexOf('@')).toLowerCase();
  if (local.startsWith('fail-')) {
    stats.rcpt_failed++;
    return [false, `550 5.1.1 <${addr}>: no such user`];
  }
  const m = /^defer(\d+)-/.exec(local);
  if (m) {
    const n = (rcptAttempts.get(addr) ?? 0) + 1;
    if (n <= Number(m[1])) {
      rcptAttempts.set(addr, n);
      stats.rcpt_deferred++;
      return [false, `451 4.3.0 <${addr}>: busy, try again later (${n}/${m[1]})`];
    }
    rcptAttempts.delete(addr);
  }
  stats.rcpt_ok++;
  return [true, '250 2.1.5 OK'];
}

function messageId(head) {
  const text = head.toString('latin1');
  const m = /\r\nMessage-ID:\s*(<[^>\r\n]*>)/i.exec('\r\n' + text);
  return m ? m[1] : null;
}

const server = createServer((sock) => {
  stats.connections++;
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let inData = false;
  let dataBytes = 0;
  let head = [];
  let headLen = 0;
  let tail = Buffer.alloc(0); // last bytes of the data seen, for a terminator split across chunks
  let okRcpts = [];
  let out = [];
  const reply = (line) => out.push(line + '\r\n');
  const flush = () => {
    if (out.length) {
      sock.write(out.join(''));
      out = [];
    }
  };
  const reset = () => {
    okRcpts = [];
  };

  const command = (line) => {
    const verb = line.slice(0, 4).toUpperCase();
    switch (verb) {
      case 'EHLO':
        reply('250-soak-sink');
        reply('250-PIPELINING');
        reply('250-8BITMIME');
        reply('250-ENHANCEDSTATUSCODES');
        reply('250 SIZE 52428800');
        break;
      case 'HELO':
        reply('250 soak-sink');
        break;
      case 'MAIL':
        reset();
        reply('250 2.1.0 OK');
        break;
      case 'RCPT': {
        const m = /<([^>]*)>/.exec(line);
        const [ok, text] = rcptReply(m ? m[1] : '');
        if (ok) okRcpts.push(m[1]);
        reply(text);
        break;
      }
      case 'DATA':
        if (okRcpts.length === 0) {
          reply('554 5.5.1 no valid recipients');
        } else {
          reply('354 end with <CRLF>.<CRLF>');
          inData = true;
          dataBytes = 0;
          head = [];
          headLen = 0;
          tail = Buffer.from('\r\n'); // the terminator may follow DATA's line at once
        }
        break;
      case 'RSET':
        reset();
        reply('250 2.0.0 OK');
        break;
      case 'NOOP':
        reply('250 2.0.0 OK');
        break;
      case 'QUIT':
        reply('221 2.0.0 bye');
        flush();
        sock.end();
        break;
      default:
        reply('500 5.5.2 unknown command');
    }
  };

  // Consumes message bytes; returns the offset in `chunk` just after the
  // final dot's line, or -1 when the message goes on.
  const data = (chunk) => {
    const probe = Buffer.concat([tail, chunk.subarray(0, DOT.length)]);
    let after = probe.indexOf(DOT);
    if (after >= 0) {
      after = after + DOT.length - tail.length;
    } else {
      after = chunk.indexOf(DOT);
      if (after >= 0) after += DOT.length;
    }
    const body = after >= 0 ? chunk.subarray(0, after) : chunk;
    dataBytes += body.length;
    if (headLen < 2048) {
      const piece = body.subarray(0, 2048 - headLen);
      head.push(piece);
      headLen += piece.length;
    }
    if (after < 0) {
      const joined = chunk.length >= DOT.length ? chunk : Buffer.concat([tail, chunk]);
      tail = Buffer.from(joined.subarray(Math.max(0, joined.length - (DOT.length - 1))));
      return -1;
    }
    inData = false;
    stats.messages++;
    stats.bytes += dataBytes;
    const id = messageId(Buffer.concat(head));
    for (const rcpt of id ? okRcpts : []) {
      const k = `${id} ${rcpt}`;
      if (seen.has(k)) stats.duplicates++;
      else seen.add(k);
    }
    reply(`250 2.0.0 OK queued as ${stats.messages}`);
    reset();
    return after;
  };

  sock.on('data', (chunk) => {
    while (chunk.length) {
      if (inData) {
        const after = data(chunk);
        if (after < 0) break;
        chunk = chunk.subarray(after);
        continue;
      }
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      chunk = Buffer.alloc(0);
      let nl;
      while (!inData && (nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        command(line);
      }
      if (inData) {
        chunk = buf;
        buf = Buffer.alloc(0);
      } else if (buf.length > 4096) {
        reply('500 5.5.2 line too long');
        flush();
        sock.destroy();
        return;
      }
    }
    flush();
  });
  sock.on('error', () => {});
  reply('220 soak-sink ESMTP');
  flush();
});

server.listen(0, '127.0.0.1', () => {
  writeFileSync(portFile, String(server.address().port));
});

process.on('SIGTERM', () => {
  writeFileSync(statsFile, JSON.stringify(stats) + '\n');
  process.exit(0);
});
