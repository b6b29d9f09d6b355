// Bad input throws a plain Error with a stable `code` and the field `path`,
// never a WebAssembly trap, and the module keeps working afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CODES, pkg } from './helpers.mjs';

const { buildEml, parseEml, envelopeOf } = await pkg();
const ok = { from: 'ana@example.com', to: ['bob@example.com'], text: 'hi' };
const FIXED = { now: 1_764_000_000_000, seed: 1 };

function throwsCoded(fn, code, path, messagePart) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected an error with code ${code}`);
  assert.ok(caught instanceof Error, `not an Error: ${caught}`);
  assert.equal(Object.getPrototypeOf(caught), Error.prototype, 'a plain Error, not a subclass');
  assert.equal(caught.code, code, `code of: ${caught.message}`);
  assert.equal(caught.path, path, `path of: ${caught.message}`);
  assert.ok(ERROR_CODES.has(caught.code));
  if (messagePart) assert.match(caught.message, messagePart);
  return caught;
}

const CASES = [
  ['spec is not an object', () => buildEml('from: a@b.c'), 'INVALID_SPEC', '', /must be an object/],
  ['spec is an array', () => buildEml([ok]), 'INVALID_SPEC', '', /must be an object/],
  ['spec is null', () => buildEml(null), 'INVALID_SPEC', '', /must be an object/],
  ['unknown top-level field', () => buildEml({ ...ok, form: 'x@y.z' }, FIXED), 'INVALID_SPEC', 'form', /unknown field `form`/],
  ['unknown attachment field', () => buildEml({ ...ok, attachments: [{ content: '', filname: 'a' }] }, FIXED), 'INVALID_SPEC', 'attachments[0].filname', /unknown field/],
  ['unknown alternate field', () => buildEml({ ...ok, alternates: [{ contentType: 'text/x', content: '', x: 1 }] }, FIXED), 'INVALID_SPEC', 'alternates[0].x', /unknown field/],
  ['bad address in to[1]', () => buildEml({ ...ok, to: ['b@example.com', 'bob'] }, FIXED), 'INVALID_SPEC', 'to[1]', /missing '@'/],
  ['header injection in an address', () => buildEml({ ...ok, cc: ['x@y.z\r\nBcc: evil@z.z'] }, FIXED), 'INVALID_SPEC', 'cc[0]', /control character/],
  ['wrong type of a field', () => buildEml({ ...ok, to: 'bob@example.com' }, FIXED), 'INVALID_SPEC', 'to', /invalid type/i],
  ['bad base64', () => buildEml({ ...ok, attachments: [{ content: '!!!' }] }, FIXED), 'INVALID_SPEC', 'attachments[0].content', /base64/],
  ['bad date', () => buildEml({ ...ok, date: 'yesterday' }, FIXED), 'INVALID_SPEC', 'date', /RFC 3339/],
  ['bad priority', () => buildEml({ ...ok, priority: 'urgent' }, FIXED), 'INVALID_SPEC', 'priority', /urgent/],
  ['no from', () => buildEml({ to: ['b@example.com'] }, FIXED), 'MISSING_FROM', 'from', /From/],
  ['managed header', () => buildEml({ ...ok, headers: [['Subject', 'x']] }, FIXED), 'INVALID_HEADER', 'headers[0]', /Subject/],
  ['bad content type', () => buildEml({ ...ok, attachments: [{ content: '', contentType: 'no slash' }] }, FIXED), 'INVALID_CONTENT_TYPE', 'attachments[0].contentType'],
  ['bad message id', () => buildEml({ ...ok, messageId: 'no at sign' }, FIXED), 'INVALID_IDENTIFIER', 'messageId'],
  ['control character in subject', () => buildEml({ ...ok, subject: 'a\r\nBcc: x@y.z' }, FIXED), 'CONTROL_CHARACTER', 'subject'],
  ['options not an object', () => buildEml(ok, 42), 'INVALID_OPTIONS', '', /object/],
  ['unknown option', () => buildEml(ok, { date: 1 }), 'INVALID_OPTIONS', 'date', /unknown option/],
  ['negative seed', () => buildEml(ok, { seed: -1 }), 'INVALID_OPTIONS', 'seed'],
  ['fractional seed', () => buildEml(ok, { seed: 1.5 }), 'INVALID_OPTIONS', 'seed'],
  ['unsafe number seed', () => buildEml(ok, { seed: 2 ** 60 }), 'INVALID_OPTIONS', 'seed', /bigint/],
  ['bigint seed out of range', () => buildEml(ok, { seed: 2n ** 64n }), 'INVALID_OPTIONS', 'seed'],
  ['string seed', () => buildEml(ok, { seed: '7' }), 'INVALID_OPTIONS', 'seed'],
  ['NaN now', () => buildEml(ok, { now: NaN }), 'INVALID_OPTIONS', 'now'],
  ['invalid Date now', () => buildEml(ok, { now: new Date('nope') }), 'INVALID_OPTIONS', 'now'],
  ['parseEml of a string', () => parseEml('From: a@b.c\r\n\r\nx'), 'INVALID_ARGUMENT', '', /Uint8Array/],
  ['parseEml of an ArrayBuffer', () => parseEml(new ArrayBuffer(4)), 'INVALID_ARGUMENT', ''],
  ['parseEml of nothing', () => parseEml(), 'INVALID_ARGUMENT', ''],
  ['parseEml of empty bytes', () => parseEml(new Uint8Array()), 'EMPTY_INPUT', ''],
  ['parseEml of white space', () => parseEml(new TextEncoder().encode(' \r\n\t')), 'EMPTY_INPUT', ''],
  ['envelopeOf without sender', () => envelopeOf({ to: ['b@example.com'] }), 'NO_SENDER', 'from'],
  ['envelopeOf without recipients', () => envelopeOf({ from: 'a@example.com' }), 'NO_RECIPIENTS', 'to'],
  ['envelopeOf of a bad spec', () => envelopeOf({ from: 'nope' }), 'INVALID_SPEC', 'from', /missing '@'/],
  ['envelopeOf of a number', () => envelopeOf(7), 'INVALID_SPEC', ''],
  ['envelopeOf of empty bytes', () => envelopeOf(new Uint8Array()), 'EMPTY_INPUT', ''],
];

for (const [name, fn, code, path, message] of CASES) {
  test(`${name} -> ${code} at "${path}"`, () => {
    throwsCoded(fn, code, path, message);
  });
}

test('the message names the path too', () => {
  const e = throwsCoded(() => buildEml({ ...ok, to: ['bob'] }, FIXED), 'INVALID_SPEC', 'to[0]');
  assert.match(e.message, /^to\[0\]: /);
});

test('random bytes never trap: a spec or a coded error, and the module still works', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pieces = ['From: a@b.c\r\n', 'Content-Type: multipart/mixed; boundary=x\r\n', '--x\r\n', '\r\n',
    'Content-Transfer-Encoding: base64\r\n', '=?utf-8?B?', '?=', '\x00', '\xff\xfe', 'Subject: ', ';;;', '"'];
  let coded = 0;
  for (let i = 0; i < 400; i++) {
    let text = '';
    const n = Math.floor(rand() * 30);
    for (let k = 0; k < n; k++) {
      text += rand() < 0.5 ? pieces[Math.floor(rand() * pieces.length)] : String.fromCharCode(Math.floor(rand() * 256));
    }
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
    try {
      const spec = parseEml(bytes);
      assert.equal(typeof spec, 'object');
      envelopeOf(bytes);
    } catch (e) {
      assert.ok(!(e instanceof WebAssembly.RuntimeError), `trap on input ${JSON.stringify(text)}: ${e}`);
      assert.ok(ERROR_CODES.has(e.code), `uncoded error ${e} on ${JSON.stringify(text)}`);
      coded++;
    }
  }
  assert.ok(coded > 0, 'the fuzz loop produced no error at all: it tests nothing');
  const eml = buildEml(ok, FIXED);
  assert.equal(parseEml(eml).text, 'hi');
});
