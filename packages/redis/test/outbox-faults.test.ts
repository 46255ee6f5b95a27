// Redis faults the outbox must survive on its own: Redis full under `noeviction`, and a stalled Redis
// (SIGSTOP) whose timed-out commands still run when it wakes up.
import type { MixpanelEvent } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage, profileMessage } from '@idstitch/fake-mixpanel/helpers';
import { OutboxWorker, RedisOutbox, type RedisOutboxOptions } from '@idstitch/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, errorLog, fastMixpanel, pendingCount, TOKEN } from './helpers/setup.js';

const STREAM = 'idstitch:outbox';
let fake: FakeMixpanel;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  fake = await startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET });
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  fake.clear();
});
afterAll(() => fake.close());

function createOutbox(redis: RedisServer, options: Partial<RedisOutboxOptions> = {}) {
  const log = errorLog();
  const outbox = new RedisOutbox({
    redis: redis.url,
    mixpanel: fastMixpanel(fake),
    worker: { blockMs: 100 },
    onError: log.onError,
    ...options,
  });
  closers.push(() => outbox.close(0));
  return { outbox, ...log };
}

/** Fills Redis with other keys (64 KB each) until it uses `bytes`, checking as it goes. */
async function fillRedis(redis: RedisServer, bytes: number): Promise<void> {
  const used = async () => Number(/^used_memory:(\d+)/m.exec(await redis.client.info('memory'))?.[1]);
  for (let i = 0; (await used()) < bytes; i += 4) {
    await Promise.all([0, 1, 2, 3].map((k) => redis.client.set(`other:${i + k}`, 'x'.repeat(64 * 1024))));
  }
}

/** An event of about 10 KB (40 properties at the 255-character limit), to fill Redis quickly. */
function bigEvent(i: number) {
  const properties: Record<string, string> = {};
  for (let p = 0; p < 40; p += 1) properties[`p${p}`] = `${i}-${p}-`.padEnd(250, 'x');
  return eventMessage('Big', properties);
}

describe('outbox with Redis at maxmemory and noeviction (the recommended policy)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer({ args: ['--maxmemory', '16mb', '--maxmemory-policy', 'noeviction'] });
  });
  afterAll(() => redis.stop());

  it('a worker started while Redis is full delivers everything, and appending resumes by itself', async () => {
    // Other data leaves the outbox about 2 MB below maxmemory: a known room, not a race to fill it.
    const maxmemory = 16 * 1024 * 1024;
    await fillRedis(redis, maxmemory - 2 * 1024 * 1024);
    const { outbox, errors } = createOutbox(redis, {
      worker: false,
      flushTimeoutMs: 200,
      appendBatchSize: 50,
    });
    // About 4 MB of events (10 KB each): twice the room, so Redis refuses appends (OOM) part way.
    const written: string[] = [];
    const write = (count: number) => {
      for (let i = 0; i < count; i += 1) {
        const event = bigEvent(written.length);
        written.push((event.payload as MixpanelEvent).properties.$insert_id as string);
        outbox.write(event);
      }
    };
    write(400);
    await outbox.flush();
    await until(() => outbox.stats().redisDown, 'appends to be refused');

    // No silent loss: what is not in the stream is buffered, nothing dropped, every message counted once.
    const full = outbox.stats();
    expect(full.appended).toBeGreaterThan(0);
    expect(full.buffered).toBeGreaterThan(0);
    expect(full).toMatchObject({ tracked: 400, droppedTotal: 0 });
    expect(full.appended + full.buffered).toBe(400);
    expect(await redis.client.xlen(STREAM)).toBe(full.appended);
    const down = errors.find((error) => error.details.state === 'down');
    expect(down?.details.fault).toBe('oom');
    expect(down?.message).toContain(`Redis at ${redis.url} is out of memory (OOM`);
    // Topped up with small keys until it refuses them too, Redis stays full until something is deleted
    // (the refused append's own arguments no longer count once it was answered).
    const refuses = () =>
      redis.client.set('probe', 'x'.repeat(1024)).then(
        () => false,
        (error: Error) => /OOM/.test(error.message),
      );
    for (let i = 0; !(await refuses()); i += 1) {
      // Refused too when the outbox's retry holds its arguments in Redis at that moment.
      await redis.client.set(`top-up:${i}`, 'x'.repeat(1024)).catch(() => {});
    }

    const log = errorLog();
    const worker = new OutboxWorker({
      redis: redis.url,
      mixpanel: fastMixpanel(fake),
      blockMs: 100,
      onError: log.onError,
    }).start();
    closers.push(() => worker.close(0));

    // Delivery frees memory (XACK + XDEL), the producer's buffered messages get appended, and
    // everything reaches Mixpanel exactly once, with no help.
    await until(
      async () => fake.events.length >= written.length && (await redis.client.xlen(STREAM)) === 0,
      'every message delivered',
      60_000,
    );
    expect(fake.events).toHaveLength(written.length);
    expect(fake.insertIds()).toEqual(new Set(written));
    expect(outbox.stats()).toMatchObject({ buffered: 0, appended: written.length, redisDown: false });
    // Reported when it began and when it ended (appends may be refused again while Redis is near full).
    const states = errors.map((error) => error.details.state).filter(Boolean);
    expect(states.at(-1)).toBe('recovered');
    expect(errors.filter((e) => e.details.state === 'down').every((e) => e.details.fault === 'oom')).toBe(
      true,
    );
    expect(await pendingCount(redis.client, STREAM)).toBe(0);
  });
});

describe('outbox with a stalled Redis (SIGSTOP)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    redis.resume();
    await redis.client.flushall();
  });
  afterAll(() => redis.stop());

  it('applies each $add and trackCharge exactly once although timed-out appends ran on resume', async () => {
    const { outbox, errors } = createOutbox(redis, {
      commandTimeoutMs: 200,
      worker: { blockMs: 100, commandTimeoutMs: 200, claimIdleMs: 1000, claimIntervalMs: 100 },
    });
    const add = () => profileMessage({ $distinct_id: 'user-1', $add: { logins: 1 } });
    const charge = (amount: number) =>
      profileMessage({ $distinct_id: 'user-1', $append: { $transactions: { $amount: amount } } });

    for (let i = 0; i < 5; i += 1) outbox.write(add());
    await outbox.flush();
    expect(fake.profileState('user-1')).toMatchObject({ logins: 5 });

    // Appends are on their way when Redis stalls: each times out, is retried, and every attempt runs
    // once Redis wakes up.
    for (let i = 0; i < 10; i += 1) outbox.write(add());
    outbox.write(charge(42));
    redis.pause();
    await until(() => outbox.stats().redisDown, 'the appends to time out');
    for (let i = 0; i < 5; i += 1) outbox.write(add());
    await new Promise((resolve) => setTimeout(resolve, 3000));
    redis.resume();

    await until(
      async () =>
        outbox.stats().buffered === 0 &&
        (await redis.client.xlen(STREAM)) === 0 &&
        fake.profileState('user-1')?.logins === 20,
      'delivery after the stall',
      30_000,
    );
    // Let anything appended twice surface before counting.
    await outbox.flush();
    const state = fake.profileState('user-1');
    expect(state?.logins).toBe(20);
    expect(state?.$transactions).toEqual([{ $amount: 42 }]);
    expect(outbox.stats()).toMatchObject({ appended: 21, buffered: 0, droppedTotal: 0 });
    expect(errors.find((error) => error.details.state === 'down')?.message).toContain('no answer in time');
  });
});

describe('outbox on a Redis whose maxmemory-policy may evict keys', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
  });
  afterAll(() => redis.stop());

  it('says so once: Redis could evict the stream (messages lost without a trace) or the append markers', async () => {
    const { outbox, errors } = createOutbox(redis, { worker: false });
    outbox.write(eventMessage('Viewed', {}));
    await outbox.flush();
    await until(
      () => errors.some((error) => error.details.state === 'eviction_risk'),
      'the eviction warning',
      5000,
    );
    await redis.client.config('SET', 'maxmemory-policy', 'volatile-ttl');
    // A reconnect checks again, but the same outbox does not repeat itself.
    await redis.client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    outbox.write(eventMessage('Viewed', {}));
    await outbox.flush();

    const warnings = errors.filter((error) => error.details.state === 'eviction_risk');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.code).toBe('delivery_failed');
    expect(warnings[0]!.message).toMatch(/maxmemory-policy allkeys-lru/);
    expect(warnings[0]!.message).toMatch(/noeviction/);
    expect(warnings[0]!.details).toMatchObject({ maxmemoryPolicy: 'allkeys-lru', stream: STREAM });
  });

  it('stays quiet under noeviction, and without a maxmemory (nothing is ever evicted)', async () => {
    await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
    const first = createOutbox(redis, { worker: false });
    first.outbox.write(eventMessage('Viewed', {}));
    await first.outbox.flush();
    await redis.client.config('SET', 'maxmemory', '0');
    await redis.client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const second = createOutbox(redis, { worker: false });
    second.outbox.write(eventMessage('Viewed', {}));
    await second.outbox.flush();
    await second.outbox.close();
    await first.outbox.close();

    expect([...first.errors, ...second.errors].map((error) => error.details.state)).not.toContain(
      'eviction_risk',
    );
  });
});
