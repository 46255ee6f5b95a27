// Proof: a worker process killed with SIGKILL while it holds a batch in flight, with the ingest server
// answering 503, loses nothing; a new worker process delivers everything, and Mixpanel's dedup on
// $insert_id keeps exactly one copy of each event.
import type { MixpanelEvent } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { RedisOutbox } from '@idstitch/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, pendingCount, TOKEN } from './helpers/setup.js';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

const STREAM = 'idstitch:outbox';
const TRACKED = 300;
let redis: RedisServer;
let fake: FakeMixpanel;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer(),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
});
afterAll(async () => {
  for (const worker of workers) worker.child.kill('SIGKILL');
  await Promise.all([redis.stop(), fake.close()]);
});

function workerEnv(): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    MIXPANEL_TOKEN: TOKEN,
    MIXPANEL_API_SECRET: API_SECRET,
    MIXPANEL_HOST: fake.url,
    IDSTITCH_OUTBOX_OPTIONS: JSON.stringify({
      claimIdleMs: 1000,
      claimIntervalMs: 100,
      blockMs: 100,
      mixpanel: {
        flushIntervalMs: 20,
        maxBatchMessages: 50,
        // Long enough that a hung request is still in flight when the worker is killed.
        requestTimeoutMs: 60_000,
        retry: { minDelayMs: 20, maxDelayMs: 50, jitter: 0, maxRetries: 1000 },
      },
    }),
  };
}

describe('idstitch-outbox-worker killed with SIGKILL mid-delivery', () => {
  it('a new worker delivers every tracked event; distinct $insert_ids == tracked, none twice after dedup', async () => {
    const outbox = new RedisOutbox({ redis: redis.url, worker: false, onError: () => {} });
    const tracked = Array.from({ length: TRACKED }, (_, i) => eventMessage('Checkout Step', { i }));
    for (const message of tracked) outbox.write(message);
    await outbox.flush();
    expect(await redis.client.xlen(STREAM)).toBe(TRACKED);

    // The first request is ingested but its answer is cut (the worker cannot know), the next ones get
    // 503, and from the fifth on the server hangs: a batch is in flight when the worker dies.
    fake.setFaultPolicy(({ index }) =>
      index === 0
        ? { kind: 'resetMidResponse' }
        : index < 4
          ? { kind: 'status', status: 503 }
          : { kind: 'hang' },
    );
    const first = await startWorkerProcess(workerEnv());
    workers.push(first);
    await until(() => fake.requests.length >= 5, 'a batch hanging in flight after 503s');
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // Nothing was acknowledged: the dead worker's entries are all still in the stream, pending.
    expect(await redis.client.xlen(STREAM)).toBe(TRACKED);
    expect(await pendingCount(redis.client, STREAM)).toBe(TRACKED);
    const ingestedBeforeCrash = fake.events.length;
    expect(ingestedBeforeCrash).toBeGreaterThan(0);

    fake.setFaultPolicy(undefined);
    const second = await startWorkerProcess(workerEnv());
    workers.push(second);
    await until(
      async () => fake.events.length === TRACKED && (await redis.client.xlen(STREAM)) === 0,
      'the new worker to deliver everything',
      30_000,
    );

    const sentIds = tracked.map((message) => (message.payload as MixpanelEvent).properties.$insert_id);
    expect(fake.insertIds()).toEqual(new Set(sentIds));
    expect(fake.insertIds().size).toBe(TRACKED);
    // At-least-once: the batch whose answer was lost arrived again, and dedup kept one copy of each.
    expect(fake.counters.duplicates).toBeGreaterThanOrEqual(ingestedBeforeCrash);
    expect(fake.events).toHaveLength(TRACKED);
    expect(await pendingCount(redis.client, STREAM)).toBe(0);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(second.output()).toContain('closed; delivered');
    await outbox.close();
  }, 60_000);
});
