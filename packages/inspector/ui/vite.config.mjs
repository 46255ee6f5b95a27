import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The inspector page: a small static app served by the inspector's middleware from any mount path, so every
// URL is relative (`base: './'`) and nothing is inlined (the page's CSP allows only its own files).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
