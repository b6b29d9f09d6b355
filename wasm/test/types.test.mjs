// The TypeScript surface: what index.d.ts exports is what the entries export,
// and none of it is `any`. (The package test type-checks a consumer with tsc
// against the installed tarball; the Rust test `ts_drift` checks the
// interfaces against core's serde fields.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WASM_DIR, pkg } from './helpers.mjs';

const generated = readFileSync(join(WASM_DIR, 'pkg', 'postwire_wasm.d.ts'), 'utf8');
const index = readFileSync(join(WASM_DIR, 'index.d.ts'), 'utf8');
// wasm-bindgen's loader declarations (InitInput, InitOutput, initSync, the
// default init) come last and are not re-exported by index.d.ts.
const publicPart = generated.slice(0, generated.indexOf('export type InitInput'));

test('generated public declarations have no `any`', () => {
  assert.ok(publicPart.includes('export function buildEml'), 'public part not found');
  const code = publicPart.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  assert.doesNotMatch(code, /\bany\b/);
});

test('index.d.ts re-exports only public declarations, and they exist', () => {
  const listed = index.match(/export (?:type )?\{([^}]*)\} from '\.\/pkg\/postwire_wasm\.js'/g).join(' ');
  for (const name of listed.replace(/export|type|from|'[^']*'|[{},]/g, ' ').split(/\s+/).filter(Boolean)) {
    assert.match(publicPart, new RegExp(`export (function|interface|type|class) ${name}\\b`), `${name} is not public`);
  }
  assert.doesNotMatch(index, /\bany\b|InitOutput|initSync/);
});

test('every function of the generated module is exported by the package and typed in index.d.ts', async () => {
  const mod = await pkg();
  const functions = [...publicPart.matchAll(/export function (\w+)/g)].map((m) => m[1]);
  assert.ok(functions.length >= 3);
  for (const f of functions) {
    assert.equal(typeof mod[f], 'function', `${f} is not exported by the package entry`);
    assert.match(index, new RegExp(`\\b${f}\\b`), `${f} is missing from index.d.ts`);
  }
  assert.equal(typeof mod.RelayClient, 'function', 'RelayClient is re-exported');
  assert.equal(mod.initSync, undefined, 'the loader is not part of the public surface');
});
