// Node.js entry (`import ... from 'postwire'` under the "node" condition):
// instantiates the WebAssembly module synchronously from the package's own
// file, so a plain `import` works in Node 20 without a bundler or fetch.
import { readFileSync } from 'node:fs';
import { initSync } from './pkg/postwire_wasm.js';

initSync({ module: readFileSync(new URL('./pkg/postwire_wasm_bg.wasm', import.meta.url)) });

export * from './api.js';
