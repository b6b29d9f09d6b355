// Benchmark: postwire's buildEml against nodemailer's MailComposer, and
// parseEml against postal-mime, on the same five messages, in one run of one
// process (so the ratios compare like with like), plus postwire-core natively
// on the same inputs. Run after building:
//
//   scripts/build-wasm.sh && cargo build --release -p postwire-wasm --example bench_native
//   (cd wasm && node bench/bench.mjs)
//
// Each side gets its natural input, prepared outside the timed loop: a
// MessageSpec with the attachments as bytes (Buffers) for buildEml, a
// nodemailer mail object with the same Buffers for MailComposer; both parsers
// parse the very same bytes, and both return attachment content as bytes
// (parseEml with { bytes: true }; postal-mime gives ArrayBuffers). The
// "base64" column is postwire with the CLI's form instead (attachments as
// base64 strings in, and out of parseEml by default). Time per operation is
// the median of 15 batches, each batch running for about 1/15 of the time
// budget (POSTWIRE_BENCH_MS, default 3000 ms per side and case).
// The native column runs the example `bench_native` (POSTWIRE_BENCH_NATIVE,
// default target/release/examples/bench_native) on the same specs and bytes;
// "n/a" when it is not built.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import PostalMime from 'postal-mime';
import { buildEml, parseEml } from 'postwire';

const BUDGET_MS = Number(process.env.POSTWIRE_BENCH_MS ?? 3000);
const BATCHES = 15;

function lorem(bytes) {
  const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
  let out = '';
  let line = '';
  for (let i = 0; out.length < bytes; i++) {
    line += words[i % words.length] + ' ';
    if (line.length > 70) {
      out += line.trimEnd() + '\n';
      line = '';
    }
  }
  return out.slice(0, bytes);
}

/** The five messages as { spec, spec64, mail } describing the same content. */
function cases() {
  const base = { from: 'Ana Núñez <ana@example.com>', to: ['bob@example.com', 'Carl <carl@example.org>'], subject: 'Reunión del martes' };
  const small = { ...base, text: 'Hola Bob,\n\nnos vemos el martes a las 10.\n\nAna\n' };
  const att = [randomBytes(100 * 1024), randomBytes(100 * 1024)];
  const medium = { ...base, text: lorem(2000), html: `<p>${lorem(4000).replace(/\n/g, '<br>')}</p>`, att: [['report.pdf', 'application/pdf', att[0]], ['photo.jpg', 'image/jpeg', att[1]]] };
  const bigAtt = [randomBytes(2 * 1024 * 1024), randomBytes(1536 * 1024)];
  const large = { ...base, text: lorem(200_000), html: `<div>${lorem(400_000).replace(/\n/g, '<br>\n')}</div>`, att: [['archive.zip', 'application/zip', bigAtt[0]], ['scan.tiff', 'image/tiff', bigAtt[1]]] };
  const oneBig = { ...base, text: 'Hola Bob,\n\nte mando el archivo.\n\nAna\n', att: [['dataset.zip', 'application/zip', randomBytes(5 * 1024 * 1024)]] };
  const tenMb = { ...base, text: 'Hola Bob,\n\nlas diez fotos.\n\nAna\n', att: Array.from({ length: 10 }, (_, i) => [`photo-${i + 1}.jpg`, 'image/jpeg', randomBytes(1024 * 1024)]) };
  const toSpec = (m, encode) => ({
    from: m.from, to: m.to, subject: m.subject, text: m.text, html: m.html,
    attachments: (m.att ?? []).map(([filename, contentType, bytes]) => ({ filename, contentType, content: encode(bytes) })),
  });
  const toMail = (m) => ({
    from: m.from, to: m.to.join(', '), subject: m.subject, text: m.text, html: m.html,
    attachments: (m.att ?? []).map(([filename, contentType, content]) => ({ filename, contentType, content })),
  });
  return [
    ['small text', small],
    ['text + HTML + 2 x 100 KB attachments', medium],
    ['5 MB message', large],
    ['one 5 MB attachment, short text', oneBig],
    ['ten 1 MB attachments', tenMb],
  ].map(([name, m]) => ({ name, spec: toSpec(m, (b) => b), spec64: toSpec(m, (b) => b.toString('base64')), mail: toMail(m) }));
}

async function measure(fn) {
  for (let i = 0; i < 3; i++) await fn(); // warm up
  const perBatch = BUDGET_MS / BATCHES;
  const samples = [];
  for (let b = 0; b < BATCHES; b++) {
    let n = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    do {
      await fn();
      n++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    } while (elapsed < perBatch);
    samples.push(elapsed / n);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const fmt = (ms) => (ms == null ? 'n/a' : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);
const options = { now: 1_764_000_000_000, seed: 42 };
const all = cases();

// The native side first, on the same inputs (written to a temporary folder).
const nativeBin = process.env.POSTWIRE_BENCH_NATIVE ?? new URL('../../target/release/examples/bench_native', import.meta.url).pathname;
let native = {};
if (existsSync(nativeBin)) {
  const dir = mkdtempSync(join(tmpdir(), 'postwire-bench-'));
  all.forEach((c, i) => {
    writeFileSync(join(dir, `case${i}.json`), JSON.stringify(c.spec64));
    writeFileSync(join(dir, `case${i}.eml`), buildEml(c.spec, options));
  });
  native = JSON.parse(execFileSync(nativeBin, [dir, String(BUDGET_MS)], { encoding: 'utf8' }));
}

const rows = [];
all.forEach((c, i) => {
  rows.push({ c, i, eml: buildEml(c.spec, options) });
});
const table = [];
for (const { c, i, eml } of rows) {
  const size = (eml.length / 1024).toFixed(0) + ' KB';
  const nat = native[`case${i}`] ?? {};
  const ours = await measure(() => buildEml(c.spec, options));
  const ours64 = await measure(() => buildEml(c.spec64, options));
  const theirs = await measure(() => new MailComposer(c.mail).compile().build());
  table.push(['build', c.name, size, ours, ours64, 'nodemailer MailComposer', theirs, nat.build]);
  const parsedOurs = await measure(() => parseEml(eml, { bytes: true }));
  const parsedOurs64 = await measure(() => parseEml(eml));
  const parsedTheirs = await measure(() => PostalMime.parse(eml));
  table.push(['parse', c.name, size, parsedOurs, parsedOurs64, 'postal-mime', parsedTheirs, nat.parse]);
}

console.log(`node ${process.version}, ${BUDGET_MS} ms per side and case, median of ${BATCHES} batches${existsSync(nativeBin) ? '' : ` (no native figures: ${nativeBin} not built)`}\n`);
console.log('| op | message | size | postwire (bytes) | postwire (base64) | other | other | other / postwire (bytes) | other / postwire (base64) | native core |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const [op, name, size, ours, ours64, other, theirs, nat] of table) {
  console.log(`| ${op} | ${name} | ${size} | ${fmt(ours)} | ${fmt(ours64)} | ${other} | ${fmt(theirs)} | ${(theirs / ours).toFixed(2)}x | ${(theirs / ours64).toFixed(2)}x | ${fmt(nat)} |`);
}
