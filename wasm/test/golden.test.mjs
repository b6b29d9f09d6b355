// WASM and native give the same bytes: every golden spec is built by the
// package (buildEml with fixed now/seed) and by the native CLI
// (`postwire build --now --seed`), and the two must be byte-identical; core's
// golden specs must also equal their stored .eml. Then the round trip through
// parseEml must agree with `postwire parse` on the very same bytes.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { cli, goldenSpecs, pkg } from './helpers.mjs';

const { buildEml, parseEml } = await pkg();
const { core, ours } = goldenSpecs();

// core's golden builds use these (core/tests/golden.rs NOW and SEED).
const GOLDEN_NOW = 1_764_000_000;
const GOLDEN_SEED = 42;

// Our specs are built with several clocks and seeds, including a seed above
// 2^53 (a bigint in JS) and the largest u64.
const OPTION_SETS = [
  { now: 1_764_000_000, seed: 42n },
  { now: 0, seed: 0 },
  { now: 1_900_000_123, seed: Number.MAX_SAFE_INTEGER },
  { now: 1_700_000_000, seed: 2n ** 64n - 1n },
  { now: 1_234_567_890, seed: 9_007_199_254_740_993n },
];

function nativeBuild(file, now, seed) {
  return cli(['build', file, '--now', String(now), '--seed', String(seed)]);
}

test('there are golden specs to compare', () => {
  assert.ok(ours.length >= 3, `found only ${ours.length} of our specs`);
  assert.ok(core.length + ours.length >= 3);
});

for (const file of core) {
  test(`core golden ${basename(file)}: WASM = native = stored .eml`, () => {
    const spec = JSON.parse(readFileSync(file, 'utf8'));
    const wasm = buildEml(spec, { now: GOLDEN_NOW * 1000, seed: GOLDEN_SEED });
    const native = nativeBuild(file, GOLDEN_NOW, GOLDEN_SEED);
    assert.ok(Buffer.from(wasm).equals(native), `${file}: WASM and native bytes differ`);
    const stored = readFileSync(file.replace(/\.json$/, '.eml'));
    assert.ok(Buffer.from(wasm).equals(stored), `${file}: WASM bytes differ from the stored .eml`);
  });
}

for (const file of ours) {
  for (const { now, seed } of OPTION_SETS) {
    test(`${basename(file)} now=${now} seed=${seed}: WASM = native, parse agrees`, () => {
      const spec = JSON.parse(readFileSync(file, 'utf8'));
      const wasm = Buffer.from(buildEml(spec, { now: now * 1000, seed }));
      const native = nativeBuild(file, now, seed);
      assert.equal(wasm.toString('latin1'), native.toString('latin1'));
      assert.ok(wasm.equals(native));

      const dir = mkdtempSync(join(tmpdir(), 'postwire-golden-'));
      const eml = join(dir, 'm.eml');
      writeFileSync(eml, wasm);
      const nativeSpec = JSON.parse(cli(['parse', eml]).toString('utf8'));
      const wasmSpec = parseEml(wasm);
      assert.deepEqual(wasmSpec, nativeSpec);
      // The build honoured the options: the date is `now` unless the spec has one.
      if (!spec.date) {
        assert.equal(Date.parse(wasmSpec.date), now * 1000);
      }
    });
  }
}

test('a Date object as `now` equals the same instant in milliseconds', () => {
  const spec = JSON.parse(readFileSync(ours[0], 'utf8'));
  const a = buildEml(spec, { now: new Date(1_764_000_000_000), seed: 5 });
  const b = buildEml(spec, { now: 1_764_000_000_000, seed: 5 });
  assert.deepEqual(a, b);
});

test('without options, time and entropy come from the JS host', () => {
  const spec = { from: 'a@example.com', to: ['b@example.com'], text: 'x' };
  const before = Math.floor(Date.now() / 1000) * 1000;
  const one = parseEml(buildEml(spec));
  const two = parseEml(buildEml(spec));
  const after = Date.now();
  assert.notEqual(one.messageId, two.messageId, 'crypto.getRandomValues must seed each build');
  const t = Date.parse(one.date);
  assert.ok(t >= before && t <= after, `date ${one.date} is not now`);
});
