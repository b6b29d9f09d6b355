// Browser entry (bundlers such as Vite, and plain <script type="module">):
// fetches and instantiates the WebAssembly module next to this file before
// the module finishes loading (top-level await), so every function is
// synchronous afterwards. The literal `new URL(..., import.meta.url)` lets
// bundlers find and emit the .wasm file.
import init from './pkg/postwire_wasm.js';

await init({ module_or_path: new URL('./pkg/postwire_wasm_bg.wasm', import.meta.url) });

export * from './api.js';
