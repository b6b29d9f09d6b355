// Vite build of the composer page into web/dist, which the relay serves
// (relay/src/web_assets.rs) embedded or from a directory. `--mode admin`
// builds the operator view (admin.html, served at /admin; its code in
// src/admin/) into the same folder, as a second build so that the composer's
// bundle stays as it is (one build of both pages would move the shared
// modulepreload polyfill into a chunk of its own); scripts/build-web.sh runs
// both. Fixed file names (no content hashes): the relay embeds whatever is
// there and serves every file with Cache-Control: no-cache, so names need not
// change per build.
import { defineConfig } from 'vite';

export default defineConfig(({ mode }) => ({
  base: '/',
  build: {
    outDir: 'dist',
    // The admin build adds its files next to the composer's.
    emptyOutDir: mode !== 'admin',
    target: 'es2022',
    assetsInlineLimit: 0,
    rollupOptions: {
      // Relative to web/, where scripts/build-web.sh runs vite.
      input: (mode === 'admin' ? { admin: 'admin.html' } : { index: 'index.html' }) as Record<string, string>,
      // RelayClient imports Node's `ws` package only when there is no global
      // WebSocket, and the package's builder only when it is handed a spec
      // instead of bytes: neither happens in this page (it always passes
      // bytes, in a browser), so those two imports are left as they are.
      external: (id, importer) =>
        id === 'ws' || (id === '../index.js' && /[\\/]js[\\/]relay-client\.js$/.test(importer ?? '')),
      output: {
        entryFileNames: 'assets/[name].js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/[name][extname]',
      },
    },
  },
  server: {
    // `npm run dev` talks to a relay on 127.0.0.1:8025 (postwire serve --listen 127.0.0.1:8025).
    // The operator view (/admin.html in dev) reads /admin/v1 and /metrics there too.
    proxy: {
      '/v1': { target: 'ws://127.0.0.1:8025', ws: true },
      '/admin/v1': { target: 'http://127.0.0.1:8025' },
      '/metrics': { target: 'http://127.0.0.1:8025' },
    },
  },
}));
