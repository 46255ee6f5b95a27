// What an operator reads when Redis refuses idstitch: the real cause and the URL, never the password,
// and no MaxListenersExceededWarning however many requests arrive during the outage.
import { createServer } from 'node:net';
import type { IdstitchError } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { RedisIdentityStore, RedisOutbox } from '@idstitch/redis';
import { main } from '@idstitch/redis/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, fastMixpanel, TOKEN } from './helpers/setup.js';

let redis: RedisServer;
let fake: FakeMixpanel;
beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer({ password: 'right-password' }),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
});
afterAll(async () => {
  await Promise.all([redis.stop(), fake.close()]);
});

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('Redis diagnostics', () => {
  it('a wrong password reads "authentication failed (WRONGPASS)" with the URL and no credentials', async () => {
    const errors: IdstitchError[] = [];
    const url = `redis://:wrong-password@127.0.0.1:${redis.port}`;
    const store = new RedisIdentityStore({ redis: url, connectWaitMs: 200, onError: (e) => errors.push(e) });
    const outbox = new RedisOutbox({ redis: url, worker: false, onError: (e) => errors.push(e) });
    await store.hold('device-1', { $set: { a: 1 }, heldAt: Date.now() });
    outbox.write(eventMessage('Denied'));
    await until(() => errors.length >= 2, 'both to report');
    for (const error of errors) {
      expect(error.message).toContain(
        `authentication failed (WRONGPASS) for redis://127.0.0.1:${redis.port}`,
      );
      expect(error.message).not.toContain('wrong-password');
      expect(error.message).not.toContain("Stream isn't writeable");
      expect(error.details.fault).toBe('auth');
    }
    await Promise.all([store.close(0), outbox.close(0)]);
  });

  it('NOPERM names the missing permission', async () => {
    await redis.client.call(
      'ACL',
      'SETUSER',
      'limited',
      'on',
      '>limited-pw',
      '~*',
      '+@all',
      '-evalsha',
      '-eval',
    );
    const errors: IdstitchError[] = [];
    const store = new RedisIdentityStore({
      redis: `redis://limited:limited-pw@127.0.0.1:${redis.port}`,
      onError: (e) => errors.push(e),
    });
    await store.hold('device-1', { $set: { a: 1 }, heldAt: Date.now() });
    expect(errors[0]?.details.fault).toBe('noperm');
    expect(errors[0]?.message).toContain('(NOPERM)');
    expect(errors[0]?.message).not.toContain('limited-pw');
    await store.close(0);
  });

  it('during an outage from boot, a flood of requests raises no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const url = `redis://127.0.0.1:${await closedPort()}`;
      const errors: IdstitchError[] = [];
      const store = new RedisIdentityStore({ redis: url, takeRetryMs: 0, onError: (e) => errors.push(e) });
      const outbox = new RedisOutbox({
        redis: url,
        mixpanel: fastMixpanel(fake),
        flushTimeoutMs: 100,
        onError: (e) => errors.push(e),
      });
      await Promise.all([
        ...Array.from({ length: 200 }, (_, i) =>
          store.hold(`device-${i}`, { $set: { i }, heldAt: Date.now() }),
        ),
        ...Array.from({ length: 50 }, (_, i) => store.take(`device-${i}`).catch(() => [])),
        ...Array.from({ length: 50 }, () => outbox.flush()),
      ]);
      for (let i = 0; i < 200; i += 1) outbox.write(eventMessage('Offline'));
      await outbox.flush();
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      expect(errors.some((e) => e.message.includes(`connection refused (ECONNREFUSED) at ${url}`))).toBe(
        true,
      );
      await Promise.all([store.close(0), outbox.close(0)]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('the worker CLI with Redis down names the URL and ECONNREFUSED, never the password', async () => {
    const port = await closedPort();
    const err: string[] = [];
    let stop!: (signal: NodeJS.Signals) => void;
    const running = main([], {
      env: { MIXPANEL_TOKEN: 't', REDIS_URL: `redis://user:secret-pw@127.0.0.1:${port}` },
      log: () => {},
      error: (line) => err.push(line),
      stopSignal: new Promise((resolve) => {
        stop = resolve;
      }),
    });
    await until(() => err.length > 0, 'the worker to report');
    stop('SIGTERM');
    expect(await running).toBe(0);
    expect(err.join('\n')).toContain(`connection refused (ECONNREFUSED) at redis://127.0.0.1:${port}`);
    expect(err.join('\n')).not.toContain('secret-pw');
  });
});
