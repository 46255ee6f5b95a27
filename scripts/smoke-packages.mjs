#!/usr/bin/env node
// Packs the publishable packages as npm would publish them, installs the tarballs into a fresh ESM app and a
// fresh CommonJS app, and checks each can import the packages, serve a request and type-check against them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = join(root, '.smoke');
const packages = readdirSync(join(root, 'packages')).filter((name) => !name.startsWith('.'));
const run = (command, args, cwd) =>
  execFileSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, 'tarballs'), { recursive: true });
run('pnpm', ['-r', '--filter', './packages/**', 'run', 'build'], root);
const tarballs = {};
for (const name of packages) {
  const dir = join(root, 'packages', name);
  const out = run('pnpm', ['pack', '--pack-destination', join(work, 'tarballs')], dir)
    .trim()
    .split('\n')
    .at(-1);
  tarballs[`@idstitch/${name}`] = `file:${out}`;
}

/** The same app for both module systems; only how it loads the packages differs. */
function consumerApp(imports) {
  return `${imports}
const sink = new MemorySink();
const app = express();
app.use(idstitch({ sink, cookie: { secret: 'smoke-test-secret-0123456789' } }));
app.get('/', (req, res) => { req.tracker.track('Smoke'); res.end(); });
const server = app.listen(0, async () => {
  const response = await fetch('http://127.0.0.1:' + server.address().port + '/');
  server.close();
  if (!response.headers.get('set-cookie')?.startsWith('idstitch_device=')) throw new Error('no device cookie');
  if (sink.events[0]?.event !== 'Smoke') throw new Error('no event');
  console.log('app ok');
});
`;
}
const consumer = {
  esm: consumerApp(`import { idstitch } from '@idstitch/express';
import { MemorySink } from '@idstitch/core';
import express from 'express';`),
  cjs: consumerApp(`const { idstitch } = require('@idstitch/express');
const { MemorySink } = require('@idstitch/core');
const express = require('express');`),
};
const typed = `import { idstitch, getTracker } from '@idstitch/express';
import { MemorySink, type Tracker } from '@idstitch/core';
import express from 'express';
const app = express();
app.use(idstitch({ sink: new MemorySink(), idMerge: 'original' }));
app.get('/', (req, res) => { const t: Tracker = req.tracker; t.people.increment('visits'); getTracker(req).track('x'); res.end(); });
`;

for (const [kind, source] of Object.entries(consumer)) {
  const dir = join(work, `${kind}-app`);
  mkdirSync(dir, { recursive: true });
  const deps = {
    ...tarballs,
    express: '^5.1.0',
    typescript: '7.0.2',
    '@types/express': '^5.0.3',
    '@types/node': '^20.19.0',
  };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify(
      {
        name: `smoke-${kind}`,
        private: true,
        type: kind === 'esm' ? 'module' : 'commonjs',
        dependencies: deps,
        overrides: tarballs,
      },
      null,
      2,
    ),
  );
  writeFileSync(join(dir, kind === 'esm' ? 'index.mjs' : 'index.cjs'), source);
  writeFileSync(join(dir, 'typed.ts'), typed);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noEmit: true,
        types: ['node'],
        esModuleInterop: true,
      },
      files: ['typed.ts'],
    }),
  );
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  process.stdout.write(`${kind} ${run(process.execPath, [kind === 'esm' ? 'index.mjs' : 'index.cjs'], dir)}`);
  run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
  console.log(`${kind} types ok`);
}
console.log(
  `smoke: ${packages.map((name) => `@idstitch/${name}`).join(', ')} packed, imported from ESM and CommonJS, type-checked`,
);
