// Benchmark: postwire's buildEml against nodemailer's MailComposer, and
// parseEml against postal-mime, on the same three messages, in one run of one
// process (so the ratios compare like with like). Run after building:
//
//   scripts/build-wasm.sh && (cd wasm && node bench/bench.mjs)
//
// Each side gets its natural input, prepared outside the timed loop: a
// MessageSpec (attachments base64, the package's format) for buildEml, a
// nodemailer mail object with Buffers for MailComposer; both parsers parse
// the very same bytes. Time per operation is the median of 15 batches, each
// batch running for about 1/15 of the time budget (POSTWIRE_BENCH_MS, default
// 3000 ms per side and case).
import { randomBytes } from 'node:crypto';
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

/** The three messages as { spec, mail } pairs describing the same content. */
function cases() {
  const base = { from: 'Ana Núñez <ana@example.com>', to: ['bob@example.com', 'Carl <carl@example.org>'], subject: 'Reunión del martes' };
  const small = { ...base, text: 'Hola Bob,\n\nnos vemos el martes a las 10.\n\nAna\n' };
  const att = [randomBytes(100 * 1024), randomBytes(100 * 1024)];
  const medium = { ...base, text: lorem(2000), html: `<p>${lorem(4000).replace(/\n/g, '<br>')}</p>`, att: [['report.pdf', 'application/pdf', att[0]], ['photo.jpg', 'image/jpeg', att[1]]] };
  const bigAtt = [randomBytes(2 * 1024 * 1024), randomBytes(1536 * 1024)];
  const large = { ...base, text: lorem(200_000), html: `<div>${lorem(400_000).replace(/\n/g, '<br>\n')}</div>`, att: [['archive.zip', 'application/zip', bigAtt[0]], ['scan.tiff', 'image/tiff', bigAtt[1]]] };
  const toSpec = (m) => ({
    from: m.from, to: m.to, subject: m.subject, text: m.text, html: m.html,
    attachments: (m.att ?? []).map(([filename, contentType, bytes]) => ({ filename, contentType, content: bytes.toString('base64') })),
  });
  const toMail = (m) => ({
    from: m.from, to: m.to.join(', '), subject: m.subject, text: m.text, html: m.html,
    attachments: (m.att ?? []).map(([filename, contentType, content]) => ({ filename, contentType, content })),
  });
  return [
    ['small text', small],
    ['text + HTML + 2 x 100 KB attachments', medium],
    ['5 MB message', large],
  ].map(([name, m]) => ({ name, spec: toSpec(m), mail: toMail(m) }));
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

const fmt = (ms) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);
const options = { now: 1_764_000_000_000, seed: 42 };
const rows = [];
for (const c of cases()) {
  const eml = buildEml(c.spec, options);
  const ours = await measure(() => buildEml(c.spec, options));
  const theirs = await measure(() => new MailComposer(c.mail).compile().build());
  rows.push(['build', c.name, (eml.length / 1024).toFixed(0) + ' KB', 'nodemailer MailComposer', ours, theirs]);
  const parsedOurs = await measure(() => parseEml(eml));
  const parsedTheirs = await measure(() => PostalMime.parse(eml));
  rows.push(['parse', c.name, (eml.length / 1024).toFixed(0) + ' KB', 'postal-mime', parsedOurs, parsedTheirs]);
}

console.log(`node ${process.version}, ${BUDGET_MS} ms per side and case, median of ${BATCHES} batches\n`);
console.log('| op | message | size | postwire | other | other | other / postwire |');
console.log('|---|---|---|---|---|---|---|');
for (const [op, name, size, other, ours, theirs] of rows) {
  console.log(`| ${op} | ${name} | ${size} | ${fmt(ours)} | ${other} | ${fmt(theirs)} | ${(theirs / ours).toFixed(2)}x |`);
}
