// Helpers shared by the composer page's tests (tests/js/web*.test.mjs): paths,
// and loading the page's TypeScript modules compiled by esbuild (the same
// compiler Vite uses) from web/node_modules, installed by scripts/setup.d/60-web.sh.
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB = path.join(ROOT, 'web');

/** require() that resolves from web/ (its node_modules hold esbuild and playwright-core). */
export const webRequire = createRequire(path.join(WEB, 'package.json'));

/** Compiles web/src/<name>.ts (with its imports) to ESM and imports it. */
export async function importWebModule(name) {
  const esbuild = webRequire('esbuild');
  const outdir = mkdtempSync(path.join(tmpdir(), 'postwire-web-unit-'));
  const outfile = path.join(outdir, `${name}.mjs`);
  await esbuild.build({
    entryPoints: [path.join(WEB, 'src', `${name}.ts`)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    outfile,
    logLevel: 'error',
  });
  return import(pathToFileURL(outfile).href);
}
