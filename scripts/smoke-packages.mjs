#!/usr/bin/env node
// Packs the publishable packages as npm would publish them and installs the tarballs into three fresh apps
// (ESM, CommonJS, and a NestJS app compiled by tsc with decorator metadata). Each app imports every package,
// serves a real request, and type-checks against the published declarations. Before installing, the tarballs
// pass the release check (scripts/check-packages.mjs: publint --strict, attw, the repository's own rules).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildAndPack, checkTarballs } from './check-packages.mjs';

const root = resolve(import.meta.dirname, '..');
const work = join(root, '.smoke');
const run = (command, args, cwd) =>
  execFileSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

rmSync(work, { recursive: true, force: true });
const packed = buildAndPack(join(work, 'tarballs'));
// The release check (publint, attw, LICENSE, links, no maps) on the very tarballs the apps install.
checkTarballs(packed);
const tarballs = Object.fromEntries(Object.entries(packed).map(([name, path]) => [name, `file:${path}`]));

const SECRET = 'smoke-test-secret-0123456789';
/** Serves one request through the app, then checks the device cookie and the tracked event. */
const expectOneTrackedRequest = (listen, event) => `
const server = ${listen};
const response = await fetch('http://127.0.0.1:' + server.address().port + '/');
server.close();
if (!response.headers.get('set-cookie')?.includes('idstitch_device=')) throw new Error('no device cookie');
if (sink.events[0]?.event !== '${event}') throw new Error('no ${event} event');`;

const expressApp = `
const sink = new MemorySink();
const app = express();
app.use(idstitch({ sink, cookie: { secret: '${SECRET}' } }));
app.get('/', (req, res) => { req.tracker.track('Smoke'); res.end(); });
await new Promise((ready) => { globalThis.listening = app.listen(0, ready); });
${expectOneTrackedRequest('globalThis.listening', 'Smoke')}
if (typeof koaIdstitch !== 'function' || typeof IdstitchModule.forRoot !== 'function') throw new Error('adapters missing');
// The developer tooling moved out of the core: it resolves what the core recorded.
const report = buildReport(sink.events.map((payload) => ({ kind: 'event', payload })), { mode: 'simplified' });
if (report.totals.events !== 1) throw new Error('inspector did not resolve the event');
if ('buildReport' in core) throw new Error('the resolver is still in @idstitch/core');
console.log('ok');`;

const apps = {
  esm: {
    type: 'module',
    file: 'index.mjs',
    source: `import { idstitch } from '@idstitch/express';
import { idstitch as koaIdstitch } from '@idstitch/koa';
import { IdstitchModule } from '@idstitch/nestjs';
import * as core from '@idstitch/core';
import { buildReport } from '@idstitch/inspector';
import express from 'express';
const { MemorySink } = core;
${expressApp}`,
  },
  cjs: {
    type: 'commonjs',
    file: 'index.cjs',
    source: `const { idstitch } = require('@idstitch/express');
const { idstitch: koaIdstitch } = require('@idstitch/koa');
const { IdstitchModule } = require('@idstitch/nestjs');
const core = require('@idstitch/core');
const { buildReport } = require('@idstitch/inspector');
const express = require('express');
const { MemorySink } = core;
(async () => {${expressApp}
})().catch((error) => { console.error(error); process.exit(1); });`,
  },
  nest: {
    type: 'module',
    file: 'dist/main.js',
    // Compiled by tsc: the published decorators must work with real decorator metadata.
    typescript: `import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IdstitchModule, InjectTracker, Tracker } from '@idstitch/nestjs';
import { MemorySink } from '@idstitch/core';

const sink = new MemorySink();
@Controller()
class HelloController {
  constructor(@InjectTracker() private readonly tracker: Tracker) {}
  @Get()
  hello(): string {
    this.tracker.track('NestSmoke');
    return 'ok';
  }
}
@Module({ imports: [IdstitchModule.forRoot({ sink, cookie: { secret: '${SECRET}' } })], controllers: [HelloController] })
class AppModule {}
const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
${expectOneTrackedRequest('app.getHttpServer()', 'NestSmoke')}
await app.close();
console.log('ok');
`,
  },
};

const typed = `import { idstitch, getTracker } from '@idstitch/express';
import { idstitch as koaIdstitch } from '@idstitch/koa';
import { MemorySink, MixpanelSink, type Tracker } from '@idstitch/core';
import { type IdentityReport, reportFromFile } from '@idstitch/inspector';
import { SIMPLIFIED_GUIDE_TABLES } from '@idstitch/inspector/testing';
import express from 'express';
import Koa from 'koa';
const app = express();
app.use(idstitch({ sink: new MemorySink(), idMerge: 'original' }));
app.get('/', (req, res) => { const t: Tracker = req.tracker; t.people.increment('visits'); getTracker(req).track('x'); res.end(); });
new Koa().use(koaIdstitch({ sink: new MixpanelSink({ token: 'token', host: 'eu' }) }));
const tables: number = SIMPLIFIED_GUIDE_TABLES.length;
const later: Promise<IdentityReport> = reportFromFile('.idstitch/events.ndjson', { mode: 'original' });
`;

const dependencies = {
  ...tarballs,
  express: '^5.1.0',
  koa: '^3.0.0',
  '@nestjs/common': '^12.5.1',
  '@nestjs/core': '^12.5.1',
  '@nestjs/platform-express': '^12.5.1',
  'reflect-metadata': '^0.2.2',
  rxjs: '^7.8.2',
  typescript: '7.0.2',
  '@types/express': '^5.0.3',
  '@types/koa': '^3.0.0',
  '@types/node': '^20.19.0',
};
// One install shared by the three apps, each in its own folder with its own module type.
writeFileSync(
  join(work, 'package.json'),
  JSON.stringify({ name: 'idstitch-smoke', private: true, dependencies, overrides: tarballs }, null, 2),
);
run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], work);
const tsc = join(work, 'node_modules/typescript/bin/tsc');

for (const [name, app] of Object.entries(apps)) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `smoke-${name}`, private: true, type: app.type }),
  );
  const compilerOptions = {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    strict: true,
    types: ['node'],
    esModuleInterop: true,
    // Third-party declarations (@types/koa) carry their own errors; ours are checked when tsc emits them.
    skipLibCheck: true,
  };
  if (app.typescript) {
    writeFileSync(join(dir, 'main.ts'), app.typescript);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          outDir: 'dist',
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
        },
        files: ['main.ts'],
      }),
    );
  } else {
    writeFileSync(join(dir, app.file), app.source);
    writeFileSync(join(dir, 'typed.ts'), typed);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ['typed.ts'] }),
    );
  }
  run(process.execPath, [tsc, '-p', '.'], dir);
  const output = run(process.execPath, [app.file], dir).trim();
  if (output !== 'ok') throw new Error(`${name} app printed ${output}`);
  console.log(`smoke ${name}: imports, serves a tracked request, type-checks`);
}
// The installed `idstitch` command (from @idstitch/inspector) reports on a file LocalSink would write.
const bin = join(work, 'node_modules/.bin/idstitch');
const device = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const event = (name, userId) => ({
  kind: 'event',
  payload: {
    event: name,
    properties: {
      distinct_id: userId ?? `$device:${device}`,
      $device_id: device,
      ...(userId ? { $user_id: userId } : {}),
      time: 1,
      $insert_id: name,
    },
  },
});
mkdirSync(join(work, 'cli/.idstitch'), { recursive: true });
writeFileSync(
  join(work, 'cli/.idstitch/events.ndjson'),
  `${JSON.stringify(event('Viewed'))}\n${JSON.stringify(event('Identified', 'U1'))}\n`,
);
const printed = JSON.parse(run(bin, ['report', '--json'], join(work, 'cli')));
if (printed.timelines[0]?.distinctId !== 'U1')
  throw new Error(`idstitch report printed ${JSON.stringify(printed)}`);
console.log('smoke cli: the idstitch bin of @idstitch/inspector reports on a LocalSink file');
console.log(
  `smoke: ${Object.keys(tarballs).join(', ')} packed and used from ESM, CommonJS and a compiled Nest app`,
);
