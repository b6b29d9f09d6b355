// The crate's own Rust tests, so that scripts/test.sh runs them too (it
// leaves postwire-wasm out of `cargo test --workspace`):
// - natively: `ts_drift`, the TypeScript interfaces against core's serde fields;
// - inside WebAssembly: wasm/tests/web.rs through wasm-bindgen-test-runner
//   (scripts/test-wasm-rust.sh).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.mjs';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${out.slice(-4000)}`);
  return out;
}

test('native: the TypeScript interfaces match core serde fields (ts_drift)', () => {
  const out = run('cargo', ['test', '--locked', '-p', 'postwire-wasm', '--lib', 'ts_drift']);
  const m = /test result: ok\. (\d+) passed/.exec(out);
  assert.ok(m && Number(m[1]) >= 5, `expected the ts_drift tests to run:\n${out.slice(-2000)}`);
});

test('in WebAssembly: wasm-bindgen-test suite (wasm/tests/web.rs)', () => {
  const out = run('bash', [join(ROOT, 'scripts', 'test-wasm-rust.sh')]);
  for (const name of ['fixed_options_give_the_same_bytes_and_the_spec_comes_back', 'errors_are_js_errors_with_code_and_path',
    'without_options_each_build_gets_fresh_entropy', 'envelope_of_spec_is_a_plain_object']) {
    assert.match(out, new RegExp(`test ${name} \\.\\.\\. ok`), `${name} did not run and pass:\n${out.slice(-2000)}`);
  }
});
