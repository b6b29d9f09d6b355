// Shared by the package tests: where things are, the native CLI, the cases.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WASM_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(WASM_DIR, '..');
export const FIXTURES = join(WASM_DIR, 'test', 'fixtures');

/** The stable error codes (index.d.ts `ErrorCode`). */
export const ERROR_CODES = new Set([
  'INVALID_ARGUMENT', 'INVALID_SPEC', 'INVALID_OPTIONS', 'MISSING_FROM', 'INVALID_HEADER',
  'INVALID_CONTENT_TYPE', 'INVALID_IDENTIFIER', 'CONTROL_CHARACTER', 'EMPTY_INPUT',
  'NOT_A_MESSAGE', 'NO_SENDER', 'NO_RECIPIENTS', 'INVALID_ADDRESS', 'INVALID_CALENDAR', 'INVALID_ICS',
  'ITIP', 'INVALID_TNEF', 'INTERNAL',
]);

/**
 * The native `postwire` binary: $POSTWIRE_BIN (set by scripts/test.sh), else the
 * workspace's debug build. Missing is a failure, never a skip.
 */
export function postwireBin() {
  const bin = process.env.POSTWIRE_BIN || join(ROOT, 'target', 'debug', 'postwire');
  if (!existsSync(bin)) {
    throw new Error(
      `native postwire binary not found at ${bin}: build it with ` +
        '`cargo build -p postwire-relay --bin postwire` or set POSTWIRE_BIN',
    );
  }
  return bin;
}

/** Runs the native CLI and returns stdout as bytes (throws with stderr on failure). */
export function cli(args, input) {
  return execFileSync(postwireBin(), args, { input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The built package, imported the way Node users import it (the "node" condition). */
export async function pkg() {
  const entry = join(WASM_DIR, 'pkg', 'postwire_wasm_bg.wasm');
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: run scripts/build-wasm.sh first`);
  }
  return import('postwire');
}

function list(dir, filter) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter(filter).sort().map((f) => join(dir, f));
}

/** Golden build specs: core's `NNN.json` (with `NNN.eml`) and ours. */
export function goldenSpecs() {
  return {
    core: list(join(ROOT, 'core', 'tests', 'golden'), (f) => /^\d+\.json$/.test(f)),
    ours: list(join(FIXTURES, 'specs'), (f) => f.endsWith('.json')),
  };
}

/** Messages to parse: core's corpus, real-world faults and golden inputs, and ours. */
export function corpusMessages() {
  return [
    ...list(join(ROOT, 'core', 'tests', 'corpus'), (f) => f.endsWith('.eml')),
    ...list(join(ROOT, 'core', 'tests', 'realworld'), (f) => f.endsWith('.eml')),
    ...list(join(ROOT, 'core', 'tests', 'golden'), (f) => f.endsWith('.eml')),
    ...list(join(FIXTURES, 'corpus'), (f) => f.endsWith('.eml')),
  ];
}

/**
 * Packs the package as `npm pack` does (the build itself is done beforehand by
 * scripts/build-wasm.sh, which is also the prepack script) and installs the
 * tarball into a fresh temporary project. Returns { dir, tarball, files }.
 */
export function packAndInstall(prefix = 'postwire-pkg-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: WASM_DIR,
    encoding: 'utf8',
  });
  const [info] = JSON.parse(out);
  const tarball = join(dir, info.filename);
  const project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    cwd: project,
    stdio: 'pipe',
  });
  return { dir: project, tarball, files: info.files.map((f) => f.path) };
}
