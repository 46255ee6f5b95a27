#!/usr/bin/env node
// Builds the package in the current directory to ESM (dist/esm) and CommonJS (dist/cjs), each with
// its own type declarations, using the TypeScript compiler only (no bundler): the output mirrors src/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const tsc = join(require.resolve('typescript/package.json'), '..', 'bin', 'tsc');
const cwd = process.cwd();

rmSync(join(cwd, 'dist'), { recursive: true, force: true });
const run = (args) =>
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', ...args], { cwd, stdio: 'inherit' });
run(['--outDir', 'dist/esm']);
run(['--outDir', 'dist/cjs', '--module', 'commonjs', '--moduleResolution', 'bundler']);
mkdirSync(join(cwd, 'dist/cjs'), { recursive: true });
writeFileSync(join(cwd, 'dist/cjs/package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
writeFileSync(join(cwd, 'dist/esm/package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
