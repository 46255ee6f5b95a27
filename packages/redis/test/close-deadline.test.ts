// RedisOutbox.close() against a frozen Redis (SIGSTOP): it returns by its deadline, and what it could not
// append is counted exactly: `in_doubt` for the append in flight (Redis may run it when it wakes up),
// `shutdown_timeout` for the rest.
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { RedisOutbox, type RedisOutboxOptions, type RedisOutboxStats } from '@idstitch/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, errorLog, fastMixpanel, TOKEN } from './helpers/setup.js';

const STREAM = 'idstitch:outbox';
let redis: RedisServer;
let fake: FakeMixpanel;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer(),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
});
afterEach(async () => {
  redis.resume();
  await Promise.all(closers.splice(0).map((close) => close()));
  await redis.client.flushall();
  fake.clear();
});
afterAll(async () => {
  await Promise.all([redis.stop(), fake.close()]);
});

function createOutbox(options: Partial<RedisOutboxOptions> = {}) {
  const log = errorLog();
  const outbox = new RedisOutbox({
    redis: redis.url,
    mixpanel: fastMixpanel(fake),
    worker: false,
    // Far longer than the close deadlines below: only close() may end the wait.
    commandTimeoutMs: 2000,
    onError: log.onError,
    ...options,
  });
  closers.push(() => outbox.close(0));
  return { outbox, ...log };
}

/** Writes `count` events while Redis is frozen and lets the first append go out (it goes on the next tick). */
async function writeWhileFrozen(outbox: RedisOutbox, count: number): Promise<void> {
  outbox.write(eventMessage('Before', {}));
  await outbox.flush();
  redis.pause();
  for (let i = 0; i < count; i += 1) outbox.write(eventMessage('During', { i }));
  await new Promise((resolve) => setTimeout(resolve, 100));
}

function expectConserved(stats: RedisOutboxStats): void {
  expect(stats.buffered).toBe(0);
  expect(stats.tracked).toBe(stats.appended + stats.droppedTotal + stats.buffered);
}

describe('RedisOutbox.close() against a frozen Redis', () => {
  it('returns by its deadline, in-process worker included, although nothing answers', async () => {
    const { outbox } = createOutbox({
      commandTimeoutMs: 5000,
      worker: { blockMs: 100, commandTimeoutMs: 5000 },
      mixpanel: fastMixpanel(fake, { flushIntervalMs: 10 }),
    });
    await writeWhileFrozen(outbox, 3);
    const started = Date.now();
    await outbox.close(500);
    const elapsed = Date.now() - started;
    // A bound, not a timing: each command would wait 5 s for its answer, QUIT as well. The slack covers a busy machine.
    expect(elapsed).toBeLessThan(500 + 1500);
    expectConserved(outbox.stats());
  });

  it('counts the append in flight as in_doubt: Redis runs it when it wakes up', async () => {
    const { outbox, errors } = createOutbox();
    await writeWhileFrozen(outbox, 5);
    await outbox.close(300);

    const stats = outbox.stats();
    expect(stats).toMatchObject({ tracked: 6, appended: 1, buffered: 0 });
    expect(stats.dropped.in_doubt).toBe(5);
    expect(stats.dropped.shutdown_timeout).toBe(0);
    expectConserved(stats);
    expect(errors.find((error) => error.code === 'in_doubt')?.details).toMatchObject({ inDoubt: 5 });

    // In doubt, not lost: the frozen Redis had the append and runs it once it wakes up.
    redis.resume();
    await until(async () => (await redis.client.xlen(STREAM)) === 6, 'the append to run');
    // The late answer (if any) changes nothing in the counters.
    expect(outbox.stats()).toEqual(stats);
  });

  it('counts what was not sent before the deadline as shutdown_timeout', async () => {
    const { outbox, errors } = createOutbox({ appendBatchSize: 4 });
    await writeWhileFrozen(outbox, 10);
    await outbox.close(300);

    const stats = outbox.stats();
    // One append of 4 was out; the other 6 waited behind it.
    expect(stats.dropped).toMatchObject({ in_doubt: 4, shutdown_timeout: 6 });
    expect(stats).toMatchObject({ tracked: 11, appended: 1, droppedTotal: 10 });
    expectConserved(stats);
    expect(errors.find((error) => error.code === 'shutdown_timeout')?.details).toMatchObject({
      undelivered: 6,
    });
    redis.resume();
    await until(async () => (await redis.client.xlen(STREAM)) === 5, 'the append in doubt to run');
    expect(await redis.client.xlen(STREAM)).toBe(5);
  });
});
