// Nodemailer's pooled SMTP transport sending the raw messages of a folder:
// the comparison of bench/smtp/run.sh.
//   node bench/smtp/nodemailer.mjs PORT DIR CONNECTIONS
// Prints "nodemailer N messages in S s (R messages/s)"; the clock starts after
// the files are read, before the first connection.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import nodemailer from "nodemailer";

const [port, dir, connections] = process.argv.slice(2);
const messages = readdirSync(dir)
  .filter((n) => n.endsWith(".eml"))
  .sort()
  .map((n) => readFileSync(join(dir, n)));

const transport = nodemailer.createTransport({
  pool: true,
  maxConnections: Number(connections),
  maxMessages: Infinity,
  host: "127.0.0.1",
  port: Number(port),
  secure: false,
  ignoreTLS: true,
});

const start = process.hrtime.bigint();
const results = await Promise.allSettled(
  messages.map((raw) =>
    transport.sendMail({ envelope: { from: "a@example.com", to: ["b@example.org"] }, raw }),
  ),
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
transport.close();
const failed = results.filter((r) => r.status === "rejected");
if (failed.length) {
  console.error(`nodemailer: ${failed.length} failed, first: ${failed[0].reason}`);
  process.exit(1);
}
console.log(
  `nodemailer ${messages.length} messages in ${seconds.toFixed(2)} s (${(messages.length / seconds).toFixed(0)} messages/s)`,
);
