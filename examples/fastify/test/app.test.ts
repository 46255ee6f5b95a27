import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemorySink } from '@idstitch/core';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';

const serve = async (sink: MemorySink) => {
  const app = await createApp({ idstitch: { sink } });
  await app.ready();
  return app.server;
};

describe('example shop (Fastify)', () => {
  it('stitches browsing, login, purchase and logout', async () => {
    const sink = new MemorySink();
    const browser = request.agent(await serve(sink));
    await browser.get('/pricing').expect(200);
    await browser.post('/login').type('form').send({ userId: 'shopper-1' }).expect(303);
    await browser.post('/purchase').type('form').send({ amount: '19.99' }).expect(303);
    await browser.post('/logout').expect(303);
    const anonymous = await browser.get('/identity').expect(200);
    expect(sink.events.map((event) => [event.event, event.properties.$user_id ?? null])).toEqual([
      ['Page Viewed', null],
      ['Identified', 'shopper-1'],
      ['Purchase', 'shopper-1'],
    ]);
    expect(sink.events[2]!.properties).toMatchObject({
      amount: 19.99,
      $device_id: sink.events[0]!.properties.$device_id,
    });
    expect(anonymous.body.userId).toBeUndefined();
    expect(anonymous.body.deviceId).not.toBe(sink.events[0]!.properties.$device_id);
    expect(sink.profileUpdates).toEqual([{ $distinct_id: 'shopper-1', $add: { purchases: 1 } }]);
  });

  it('sets no cookie on the opted-out health check', async () => {
    const response = await request(await serve(new MemorySink()))
      .get('/healthz')
      .expect(200);
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it('boots with its start script, serves the home page with a device cookie, and stops on SIGTERM', async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const child = spawn(
      process.execPath,
      [tsx, '--conditions=@idstitch/source', join(here, '../src/server.ts')],
      // A fresh cwd: the default local sink writes .idstitch/events.ndjson there.
      { cwd: mkdtempSync(join(tmpdir(), 'idstitch-fastify-')), env: { ...process.env, PORT: '0' } },
    );
    try {
      let output = '';
      child.stdout.setEncoding('utf8');
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: string) => {
          output += chunk;
          const match = /on (http:\/\/localhost:\d+)/.exec(output);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`server exited (${code}): ${output}`)));
      });
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('idstitch example shop (Fastify)');
      expect(response.headers.getSetCookie().some((line) => line.startsWith('idstitch_device='))).toBe(true);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
