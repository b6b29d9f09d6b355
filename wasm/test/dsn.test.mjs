// Envelope-only requests in the JS API (issue 15): a spec's `dsn` and
// `requireTls` go into the envelope (and so into the relay's submit), never
// into the message's bytes; UTF-8 local parts build and parse.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pkg } from './helpers.mjs';

const { buildEml, parseEml, envelopeOf } = await pkg();
const FIXED = { now: 1_764_000_000_000, seed: 1 };
const dsn = { notify: ['failure', 'delay'], ret: 'hdrs', envid: 'x' };

test('dsn and requireTls travel in the envelope, not in the bytes', () => {
  const spec = { from: 'ana@example.com', to: ['José@ejemplo.es'], text: 'hola', dsn, requireTls: true };
  const env = envelopeOf(spec);
  assert.deepEqual(env.dsn, dsn);
  assert.equal(env.requireTls, true);
  assert.deepEqual(env.rcptTo, ['José@ejemplo.es']);
  const eml = new TextDecoder().decode(buildEml(spec, FIXED));
  assert.doesNotMatch(eml, /NOTIFY|ENVID|REQUIRETLS/i);
  assert.match(eml, /^To: <José@ejemplo\.es>\r$/m, 'a UTF-8 local part is written as UTF-8 (RFC 6532)');
  const back = parseEml(new TextEncoder().encode(eml));
  assert.deepEqual(back.to, ['José@ejemplo.es']);
  assert.equal(back.dsn, undefined);
});

test('a malformed dsn is refused with a coded error naming the field', () => {
  const spec = { from: 'ana@example.com', to: ['bob@example.org'], text: 'x', dsn: { ret: 'most' } };
  assert.throws(() => buildEml(spec, FIXED), (e) => e.code === 'INVALID_SPEC' && /dsn/.test(e.path ?? e.message));
});
