#!/usr/bin/env node
// Builds @idstitch/inspector: the library (ESM + CommonJS, by the shared script), then the inspector page
// (ui/, bundled by Vite into dist/ui, shipped pre-built), then points both outputs' ui-dir module at it.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

const root = join(import.meta.dirname, '..');
execFileSync(process.execPath, [join(root, '../../scripts/build-package.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
await build({ configFile: join(root, 'ui/vite.config.mjs'), logLevel: 'warn' });

// src/inspect/ui-dir.ts finds dist/ui from src/ with import.meta, which CommonJS lacks; in the built package
// the folder sits two levels up from dist/{esm,cjs}/inspect/.
const modules = {
  esm: `import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
/** The folder holding the pre-built inspector page (index.html and assets/). */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');
`,
  cjs: `"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
/** The folder holding the pre-built inspector page (index.html and assets/). */
exports.UI_DIR = require("node:path").join(__dirname, "..", "..", "ui");
`,
};
for (const [format, source] of Object.entries(modules)) {
  writeFileSync(join(root, 'dist', format, 'inspect/ui-dir.js'), source);
  rmSync(join(root, 'dist', format, 'inspect/ui-dir.js.map'), { force: true });
}
