// Attachment content as bytes: buildEml, encodeTnef and envelopeOf take a
// Uint8Array / Buffer / ArrayBuffer / typed-array view next to base64 text and
// build the same bytes; parseEml and decodeTnef return Uint8Array with
// { bytes: true } and base64 text by default; a Blob gets a clear error from
// the synchronous calls and is read by the RelayClient's send.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { corpusMessages, pkg } from './helpers.mjs';

const { buildEml, parseEml, encodeTnef, decodeTnef, envelopeOf, readBlobs, RelayClient } = await pkg();

const options = { now: 1_764_000_000_000, seed: 42 };

function sample(n, seed = 7) {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const pdf = sample(70_001);
const png = sample(3, 9);
const text = new TextEncoder().encode('a,b\r\n1,2\r\n');
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

function spec(contents) {
  return {
    from: 'Ana <ana@example.com>',
    to: ['bob@example.com'],
    bcc: ['carl@example.org'],
    subject: 'bytes',
    text: 'see attached',
    html: '<p>see <img src="cid:logo@x"></p>',
    attachments: [
      { filename: 'r.pdf', contentType: 'application/pdf', content: contents[0] },
      { filename: 'logo.png', contentType: 'image/png', content: contents[1], inline: true, contentId: 'logo@x' },
      { filename: 'data.csv', contentType: 'text/csv', content: contents[2] },
    ],
  };
}

const base64Spec = spec([b64(pdf), b64(png), b64(text)]);
const expected = buildEml(base64Spec, options);

test('buildEml takes Uint8Array, Buffer, ArrayBuffer and typed-array views, and builds the base64 bytes', () => {
  const slice = (bytes) => {
    // a view into the middle of a larger buffer: only the view's bytes count
    const big = new Uint8Array(bytes.length + 20);
    big.set(bytes, 7);
    return big.subarray(7, 7 + bytes.length);
  };
  const forms = {
    Uint8Array: [pdf, png, text],
    Buffer: [Buffer.from(pdf), Buffer.from(png), Buffer.from(text)],
    ArrayBuffer: [pdf.slice().buffer, png.slice().buffer, text.slice().buffer],
    subarray: [slice(pdf), slice(png), slice(text)],
    DataView: [new DataView(slice(pdf).buffer, 7, pdf.length), png, text],
    mixed: [pdf, b64(png), text.slice().buffer],
  };
  for (const [name, contents] of Object.entries(forms)) {
    assert.deepEqual(buildEml(spec(contents), options), expected, name);
  }
});

test('buildEml leaves the caller spec alone and keeps its other checks', () => {
  const s = spec([pdf, png, text]);
  buildEml(s, options);
  assert.ok(s.attachments[0].content instanceof Uint8Array, 'content not replaced in the caller object');
  assert.equal(s.attachments[0].content.length, pdf.length);
  assert.throws(
    () => buildEml({ ...s, attachments: [{ ...s.attachments[0], bogus: 1 }] }, options),
    (e) => e.code === 'INVALID_SPEC' && e.path === 'attachments[0].bogus',
  );
  assert.throws(
    () => buildEml({ ...s, attachments: [{ filename: 'x', content: 42 }] }, options),
    (e) => e.code === 'INVALID_SPEC' && e.path === 'attachments[0].content',
  );
  assert.deepEqual(buildEml({ ...s, attachments: [{ content: new Uint8Array(0) }] }, options),
    buildEml({ ...s, attachments: [{ content: '' }] }, options), 'empty content');
});

test('a Blob or File in a synchronous call is a coded error naming the field', () => {
  const blob = new Blob([pdf]);
  assert.throws(
    () => buildEml(spec([pdf, blob, text]), options),
    (e) => e.code === 'INVALID_SPEC' && e.path === 'attachments[1].content' && /arrayBuffer/.test(e.message),
  );
});

test('encodeTnef and envelopeOf take bytes too', () => {
  assert.deepEqual(encodeTnef(spec([pdf, png, text]), options), encodeTnef(base64Spec, options));
  assert.deepEqual(envelopeOf(spec([pdf, png, text])), envelopeOf(base64Spec));
});

test('parseEml returns base64 by default and Uint8Array with { bytes: true }', () => {
  const plain = parseEml(expected);
  const named = (s, name) => s.attachments.find((a) => a.filename === name);
  assert.equal(typeof named(plain, 'r.pdf').content, 'string');
  assert.equal(named(plain, 'r.pdf').content, b64(pdf));
  const parsed = parseEml(expected, { bytes: true });
  assert.equal(parsed.attachments.length, 3);
  for (const [name, bytes] of [['r.pdf', pdf], ['logo.png', png], ['data.csv', text]]) {
    assert.ok(named(parsed, name).content instanceof Uint8Array, name);
    assert.deepEqual(Buffer.from(named(parsed, name).content), Buffer.from(bytes), name);
  }
  // everything else is the same object
  assert.deepEqual({ ...parsed, attachments: parsed.attachments.map((a) => ({ ...a, content: b64(a.content) })) }, plain);
  // and it goes straight back into buildEml
  assert.deepEqual(buildEml(parsed, options), buildEml(plain, options));
  assert.deepEqual(parseEml(expected, { bytes: false }), plain);
  assert.deepEqual(parseEml(expected, {}), plain);
  assert.deepEqual(parseEml(expected, null), plain);
});

test('parse options are checked', () => {
  assert.throws(() => parseEml(expected, { byte: true }), (e) => e.code === 'INVALID_OPTIONS' && e.path === 'byte');
  assert.throws(() => parseEml(expected, { bytes: 'yes' }), (e) => e.code === 'INVALID_OPTIONS' && e.path === 'bytes');
  assert.throws(() => parseEml(expected, 'bytes'), (e) => e.code === 'INVALID_OPTIONS');
  assert.throws(() => decodeTnef(new Uint8Array(4), { bytes: 1 }), (e) => e.code === 'INVALID_OPTIONS');
});

test('decodeTnef returns Uint8Array with { bytes: true }', () => {
  const dat = encodeTnef(spec([pdf, png, text]), options);
  const plain = decodeTnef(dat);
  const bytes = decodeTnef(dat, { bytes: true });
  assert.ok(plain.attachments.length >= 3);
  assert.equal(bytes.attachments.length, plain.attachments.length);
  for (const [i, a] of bytes.attachments.entries()) {
    assert.ok(a.content instanceof Uint8Array);
    assert.equal(b64(a.content), plain.attachments[i].content);
  }
});

test('every corpus and golden message: { bytes: true } is the base64 form, decoded', () => {
  const files = corpusMessages();
  assert.ok(files.length > 10);
  for (const file of files) {
    const eml = readFileSync(file);
    const plain = parseEml(eml);
    const bytes = parseEml(eml, { bytes: true });
    const back = { ...bytes };
    if (bytes.attachments) back.attachments = bytes.attachments.map((a) => ({ ...a, content: b64(a.content) }));
    assert.deepEqual(back, plain, basename(file));
  }
});

test('readBlobs reads Blob/File contents into bytes without touching the spec', async () => {
  const s = spec([new Blob([pdf]), png, new File([text], 'data.csv')]);
  const read = await readBlobs(s);
  assert.ok(s.attachments[0].content instanceof Blob, 'caller spec unchanged');
  assert.ok(read.attachments[0].content instanceof Uint8Array);
  assert.equal(read.attachments[1].content, png);
  assert.deepEqual(buildEml(read, options), expected);
  const same = spec([pdf, png, text]);
  assert.equal(await readBlobs(same), same, 'nothing to read: the same object');
});

test('RelayClient builds a spec whose attachments are Blobs (default builder and { build })', async () => {
  const s = { ...spec([new Blob([pdf]), new File([png], 'logo.png'), text]) };
  const client = new RelayClient('ws://127.0.0.1:9/v1/submit', { token: 'pw_test', WebSocket: class {} });
  const { bytes, envelope } = await client._bytesOf(s, {});
  assert.equal(parseEml(bytes, { bytes: true }).attachments.find((a) => a.filename === 'r.pdf').content.length, pdf.length);
  assert.deepEqual(envelope.rcptTo.sort(), ['bob@example.com', 'carl@example.org']);
  let seen;
  const custom = new RelayClient('ws://127.0.0.1:9/v1/submit', { token: 'pw_test', WebSocket: class {}, build: (x) => { seen = x; return buildEml(x, options); } });
  const built = await custom._bytesOf(s, {});
  assert.ok(seen.attachments[0].content instanceof Uint8Array);
  assert.deepEqual(built.bytes, expected);
});
