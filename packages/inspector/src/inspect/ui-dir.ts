import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Source version, for running from src/ (tests, `pnpm idstitch`): the page is built into dist/ui. The
// package build replaces this module in dist/esm and dist/cjs with one that points at dist/ui from there
// (import.meta does not exist in CommonJS; see scripts/build.mjs).
// biome-ignore lint/suspicious/noTsIgnore: an error in the CommonJS build only, so @ts-expect-error cannot fit both.
// @ts-ignore import.meta is not allowed by the CommonJS build, which never runs this file.
const here: string = dirname(fileURLToPath(import.meta.url));

/** The folder holding the pre-built inspector page (index.html and assets/). */
export const UI_DIR: string = join(here, '..', '..', 'dist', 'ui');
