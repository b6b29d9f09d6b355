// Vite build of the composer page into web/dist, which the relay serves
// (relay/src/web_assets.rs) embedded or from a directory. Fixed file names
// (no content hashes): the relay embeds whatever is there and serves every
// file with Cache-Control: no-cache, so names need not change per build.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    rollupOptions: {
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
    proxy: { '/v1': { target: 'ws://127.0.0.1:8025', ws: true } },
  },
});
