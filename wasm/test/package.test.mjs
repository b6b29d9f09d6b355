// The packed tarball, installed into an empty project, works there: a plain
// `import` in Node 20 builds a message with an attachment and parses it back,
// and TypeScript (strict) type-checks a consumer against the installed types.
// This catches a broken `files` or `exports` field.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WASM_DIR, packAndInstall } from './helpers.mjs';

const { dir, files } = packAndInstall();

test('the tarball holds the runtime files and nothing of the sources', () => {
  for (const f of ['package.json', 'README.md', 'index.d.ts', 'node.js', 'browser.js', 'api.js',
    'pkg/postwire_wasm.js', 'pkg/postwire_wasm.d.ts', 'pkg/postwire_wasm_bg.wasm', 'js/relay-client.js']) {
    assert.ok(files.includes(f), `${f} missing from the tarball: ${files.join(', ')}`);
  }
  for (const f of files) {
    assert.doesNotMatch(f, /^(src|test|bench|node_modules)\/|Cargo\.toml|\.rs$/, `${f} should not be packed`);
  }
});

test('a three-line Node script in the fresh project builds and parses a message', () => {
  const script = `
import { buildEml, parseEml, envelopeOf } from 'postwire';
const eml = buildEml({ from: 'Ana <ana@example.com>', to: ['bob@example.com'], bcc: ['c@example.com'], subject: 'Hola', text: 'hi', attachments: [{ filename: 'data.bin', content: 'AAECAw==' }] });
console.log(JSON.stringify({ spec: parseEml(eml), env: envelopeOf(eml), envSpec: envelopeOf({ from: 'a@example.com', bcc: ['c@example.com'] }), head: new TextDecoder().decode(eml.slice(0, 400)) }));
`;
  writeFileSync(join(dir, 'main.js'), script);
  const out = JSON.parse(execFileSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' }));
  assert.equal(out.spec.subject, 'Hola');
  assert.equal(out.spec.text, 'hi');
  assert.equal(out.spec.attachments.length, 1);
  assert.equal(out.spec.attachments[0].filename, 'data.bin');
  assert.equal(out.spec.attachments[0].content, 'AAECAw==');
  assert.equal(out.spec.bcc, undefined, 'Bcc never goes out in the bytes');
  assert.deepEqual(out.env, { mailFrom: 'ana@example.com', rcptTo: ['bob@example.com'] });
  assert.deepEqual(out.envSpec, { mailFrom: 'a@example.com', rcptTo: ['c@example.com'] });
  assert.match(out.head, /^From: "?Ana"? <ana@example.com>\r\n/);
});

test('the installed package resolves to the node entry and loads without fetch', () => {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "globalThis.fetch = () => { throw new Error('fetch used'); }; const m = await import('postwire'); console.log(import.meta.resolve('postwire'), typeof m.buildEml)"],
    { cwd: dir, encoding: 'utf8' },
  );
  assert.match(out, /node_modules\/postwire\/node\.js function/);
});

test('TypeScript (strict) accepts correct use and rejects wrong use of the installed types', () => {
  const consumer = `
import { buildEml, parseEml, envelopeOf, RelayClient } from 'postwire';
import type { MessageSpec, Attachment, Envelope, BuildOptions, PostwireError, ErrorCode, Priority } from 'postwire';

const attachment: Attachment = { filename: 'a.pdf', contentType: 'application/pdf', content: 'AAEC', inline: false, contentId: null };
const priority: Priority = 'high';
const spec: MessageSpec = {
  from: 'Ana <ana@example.com>', sender: null, to: ['bob@example.com'], cc: [], bcc: [], replyTo: [],
  subject: 'Hola', date: '2026-12-01T09:00:00Z', messageId: '<a@example.com>', inReplyTo: null, references: [],
  text: 'hi', html: '<p>hi</p>', alternates: [{ contentType: 'text/calendar', content: 'BEGIN:VCALENDAR' }],
  attachments: [attachment], headers: [['X-A', '1']], priority, dispositionNotificationTo: [],
};
const options: BuildOptions = { now: new Date(), seed: 7n };
const bytes: Uint8Array = buildEml(spec, options);
buildEml(spec);
buildEml(spec, { now: 1764000000000, seed: 42 });
const back: MessageSpec = parseEml(bytes);
const subject: string | null | undefined = back.subject;
const env: Envelope = envelopeOf(back);
const env2: Envelope = envelopeOf(bytes);
const first: string | undefined = env.rcptTo[0];
try { buildEml({}); } catch (e) {
  const err = e as PostwireError;
  const code: ErrorCode = err.code;
  const path: string = err.path;
  void code; void path;
}
void subject; void env2; void first; void RelayClient;

// Attachment content as bytes: in (Uint8Array, ArrayBuffer, base64) and out ({ bytes: true }).
buildEml({ from: 'a@example.com', attachments: [{ content: new Uint8Array(3) }, { content: new ArrayBuffer(2) }, { content: 'AAEC' }] });
const asBytes: MessageSpec<Uint8Array> = parseEml(bytes, { bytes: true });
const raw: Uint8Array | undefined = asBytes.attachments?.[0]?.content;
const text64: string | undefined = parseEml(bytes, { bytes: false }).attachments?.[0]?.content;
buildEml(asBytes);
void raw; void text64;

// Wrong uses must be errors: each line below fails the test if it type-checks.
// @ts-expect-error unknown field
buildEml({ from: 'a@example.com', form: 'x' });
// @ts-expect-error priority is a union of three strings
buildEml({ from: 'a@example.com', priority: 'urgent' });
// @ts-expect-error recipients are arrays
buildEml({ from: 'a@example.com', to: 'bob@example.com' });
// @ts-expect-error parseEml takes bytes
parseEml('From: a@example.com');
// @ts-expect-error the result is a MessageSpec, not any
back.nope;
// @ts-expect-error options are typed
buildEml(spec, { date: 1 });
// @ts-expect-error with { bytes: true } the content is a Uint8Array, not a string
const notText: string | undefined = parseEml(bytes, { bytes: true }).attachments?.[0]?.content;
void notText;
// @ts-expect-error parse options are typed
parseEml(bytes, { binary: true });
// @ts-expect-error an error code is one of the documented strings
const bad: ErrorCode = 'NOPE';
void bad;
`;
  writeFileSync(join(dir, 'consumer.ts'), consumer);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'dom'], types: [] },
    files: ['consumer.ts'],
  }));
  const tsc = join(WASM_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
  assert.ok(readFileSync(join(dir, 'node_modules', 'postwire', 'index.d.ts'), 'utf8').includes('MessageSpec'));
});
