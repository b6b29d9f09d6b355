// The Node.js example of docs/relay.md: sends one message through a relay.
//
//   postwire token add demo --data-dir ./data --allow-from @example.com   # prints pw_...
//   postwire serve --data-dir ./data &                                    # listens on 127.0.0.1:8025
//   POSTWIRE_TOKEN=pw_... node tests/e2e/send-example.mjs [ws://127.0.0.1:8025/v1/submit]
//
// With no --smtp the relay delivers into ./data/pickup. Node 20 has no global
// WebSocket, so the `ws` package is passed in (browsers need no option).

import { WebSocket } from 'ws';
import { RelayClient } from '../../wasm/js/relay-client.js';

const url = process.argv[2] ?? 'ws://127.0.0.1:8025/v1/submit';
const token = process.env.POSTWIRE_TOKEN;
if (!token) {
  console.error('set POSTWIRE_TOKEN to the secret printed by `postwire token add`');
  process.exit(2);
}

const client = new RelayClient(url, { token, WebSocket });
const eml =
  'From: Ana <ana@example.com>\r\n' +
  'To: Bob <bob@example.org>\r\n' +
  'Subject: Hello through the relay\r\n' +
  'Message-ID: <example-1@example.com>\r\n' +
  '\r\n' +
  'Hello Bob.\r\n';
try {
  const msg = await client.send(new TextEncoder().encode(eml));
  console.log(`accepted ${msg.id} for ${msg.rcptTo.join(', ')}`);
  for (const r of await msg.done) console.log(`${r.rcpt}: ${r.state} ${r.response ?? r.reason}`);
} catch (e) {
  console.error(`not sent: ${e.code}: ${e.message}`);
  process.exitCode = 1;
} finally {
  client.close();
}
