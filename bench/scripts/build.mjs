#!/usr/bin/env node
// Builds what the benchmarks measure: the idstitch packages' published output (dist/, the same files users
// install), then the benchmark sources themselves (tsc, so Nest's decorator metadata is emitted). The
// benchmarks run on plain `node` without the `@idstitch/source` condition, so workspace packages resolve
// to dist/ exactly as they would from npm.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const bench = join(here, '..');
const root = join(bench, '..');
const require = createRequire(import.meta.url);
const tsc = join(require.resolve('typescript/package.json'), '..', 'bin', 'tsc');

if (!process.argv.includes('--skip-packages')) {
  execFileSync('pnpm', ['--filter', './packages/**', 'run', 'build'], { cwd: root, stdio: 'inherit' });
}
rmSync(join(bench, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: bench, stdio: 'inherit' });
