// TNEF from JS agrees with native: encodeTnef gives the bytes of
// `postwire tnef encode --now --seed`, a spec with `tnef: true` builds the same
// message as `postwire build`, decodeTnef reads winmail.dat files back into a
// spec (what parseEml surfaces from a message carrying one), and bad input
// gives coded errors.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ROOT, cli, pkg } from './helpers.mjs';

const { buildEml, parseEml, encodeTnef, decodeTnef } = await pkg();
const DATA = join(ROOT, 'core', 'tests', 'data', 'tnef');
const files = existsSync(DATA) ? readdirSync(DATA).filter((f) => f.endsWith('.tnef')).sort().map((f) => join(DATA, f)) : [];
const NOW = 1_764_000_000;
const tmp = mkdtempSync(join(tmpdir(), 'postwire-tnef-'));

const SPEC = {
  from: 'Ana Núñez <ana@example.com>',
  to: ['bob@example.com'],
  cc: ['Carl <carl@example.org>'],
  subject: 'Informe — noviembre',
  text: 'Hola Bob,\nadjunto el informe.\n',
  html: '<p>Hola Bob,<br>adjunto el <b>informe</b>.</p>',
  attachments: [{ filename: 'informe año.bin', contentType: 'application/octet-stream', content: Buffer.from([0, 1, 2, 250, 255]).toString('base64') }],
};

test('there are winmail.dat files to read', () => {
  assert.ok(files.length >= 2, `found ${files.length} .tnef files in ${DATA}`);
});

test('encodeTnef = postwire tnef encode, and decodeTnef reads it back', () => {
  const json = join(tmp, 'spec.json');
  writeFileSync(json, JSON.stringify(SPEC));
  const out = join(tmp, 'winmail.dat');
  cli(['tnef', 'encode', json, '-o', out, '--now', String(NOW), '--seed', '5']);
  const wasm = Buffer.from(encodeTnef(SPEC, { now: NOW * 1000, seed: 5 }));
  assert.ok(wasm.equals(readFileSync(out)), 'WASM and native winmail.dat differ');
  const back = decodeTnef(wasm);
  assert.equal(back.text, SPEC.text);
  assert.equal(back.attachments.length, 1);
  assert.equal(back.attachments[0].filename, 'informe año.bin');
  assert.equal(back.attachments[0].content, SPEC.attachments[0].content);
});

test('a spec with tnef: true builds the same bytes as postwire build and parses back', () => {
  const spec = { ...SPEC, tnef: true };
  const json = join(tmp, 'tnef-spec.json');
  writeFileSync(json, JSON.stringify(spec));
  const wasm = Buffer.from(buildEml(spec, { now: NOW * 1000, seed: 6 }));
  assert.ok(wasm.equals(cli(['build', json, '--now', String(NOW), '--seed', '6'])));
  assert.match(wasm.toString('latin1'), /application\/ms-tnef/);
  const back = parseEml(wasm);
  assert.equal(back.tnef, true);
  assert.equal(back.subject, SPEC.subject);
  assert.equal(back.attachments.find((a) => a.filename === 'informe año.bin')?.content, SPEC.attachments[0].content);
});

for (const file of files) {
  test(`decodeTnef(${basename(file)}) agrees with the message's attachments as postwire decodes them`, () => {
    const spec = decodeTnef(readFileSync(file));
    const native = JSON.parse(cli(['tnef', 'decode', file]).toString('utf8'));
    assert.equal(spec.attachments?.length ?? 0, native.attachments.length);
    native.attachments.forEach((a, i) => {
      const bytes = Buffer.from(spec.attachments[i].content, 'base64');
      if (a.embedded) {
        // An embedded message becomes an application/ms-tnef attachment holding its own stream.
        assert.equal(spec.attachments[i].contentType, 'application/ms-tnef');
        assert.ok(bytes.length > 0);
      } else {
        assert.equal(bytes.length, a.size, `attachment ${i} size`);
      }
    });
    if (native.subject === undefined) assert.equal(spec.subject, undefined);
  });
}

test('bad TNEF input gives coded errors', () => {
  for (const [input, code] of [[new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 'INVALID_TNEF'], [new Uint8Array(), 'INVALID_TNEF'], ['winmail', 'INVALID_ARGUMENT']]) {
    try {
      decodeTnef(input);
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof WebAssembly.RuntimeError), String(e));
      assert.equal(e.code, code, e.message);
    }
  }
  try {
    encodeTnef({ to: ['b@example.com'] }, { now: 0, seed: 0 });
    assert.fail('expected an error');
  } catch (e) {
    assert.equal(e.code, 'MISSING_FROM');
  }
  const good = readFileSync(files[0]);
  for (let cut = 1; cut < good.length; cut += Math.max(1, Math.floor(good.length / 40))) {
    try {
      decodeTnef(good.subarray(0, cut));
    } catch (e) {
      assert.equal(e.code, 'INVALID_TNEF', `truncated at ${cut}: ${e}`);
    }
  }
});

test('decodeTnef is lenient by default and { strict: true } refuses damage (issue 13)', () => {
  const good = encodeTnef(SPEC, { now: NOW, seed: 1 });
  const damaged = new Uint8Array([...good, 0, 13, 10]);
  assert.deepEqual(decodeTnef(damaged), decodeTnef(good));
  assert.deepEqual(decodeTnef(good, { strict: true }), decodeTnef(good));
  assert.throws(() => decodeTnef(damaged, { strict: true }), (e) => e.code === 'INVALID_TNEF');
});
