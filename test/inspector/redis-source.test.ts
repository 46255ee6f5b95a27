/**
 * The inspector's Redis source reads a real RedisOutbox stream (a redis-server of the test's own) and follows
 * it live, without consuming anything: the delivery worker, started afterwards, still delivers every entry.
 */
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { inspector, redisOutboxSource } from '@idstitch/inspector';
import { OutboxWorker, RedisOutbox } from '@idstitch/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from '../../packages/redis/test/helpers/redis-server.js';
import { fastMixpanel, pendingCount, TOKEN } from '../../packages/redis/test/helpers/setup.js';

const STREAM = 'idstitch:outbox';
let redis: RedisServer;
let fake: FakeMixpanel;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer(),
    startFakeMixpanel({ token: TOKEN, apiSecret: 'api-secret' }),
  ]);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await redis.client.flushall();
  fake.clear();
});
afterAll(async () => {
  await Promise.all([redis.stop(), fake.close()]);
});

const insertIds = (messages: readonly { kind: string; payload: unknown }[]) =>
  messages.map((m) => (m.payload as { properties: { $insert_id: string } }).properties.$insert_id);

/** The connections the inspector opened, by the names it gives them. */
async function inspectorConnections(): Promise<string[]> {
  const list = (await redis.client.client('LIST')) as string;
  return [...list.matchAll(/name=(idstitch:inspector\S*)/g)].map((match) => match[1] as string);
}

describe('redisOutboxSource', () => {
  it('reads the outbox entries, sees new ones live, consumes nothing, and closes its connections', async () => {
    // The app's outbox, without its in-process worker: entries wait in the stream.
    const outbox = new RedisOutbox({ redis: redis.url, worker: false });
    cleanups.push(() => outbox.close(0));
    const first = [1, 2, 3].map((i) => eventMessage('Viewed', { i }, { time: 1_700_000_000_000 + i }));
    for (const message of first) outbox.write(message);
    await outbox.flush();

    const source = redisOutboxSource({ redis: redis.url, blockMs: 200 });
    cleanups.push(() => source.close?.());
    const records = await source.read();
    expect(insertIds(records.messages)).toEqual(insertIds(first));
    expect(records.origins?.map((origin) => origin.pending)).toEqual(
      records.origins?.map(() =>
        expect.stringMatching(new RegExp(`^Redis outbox ${STREAM}, entry \\d+-\\d+$`)),
      ),
    );
    expect(records.notices).toContainEqual(expect.stringMatching(/only what is not delivered yet/));

    let changes = 0;
    const stop = source.watch(() => {
      changes += 1;
    });
    cleanups.push(stop);
    await until(
      async () => (await inspectorConnections()).includes('idstitch:inspector-watch'),
      'the watcher',
    );
    const later = [4, 5].map((i) => eventMessage('Clicked', { i }, { time: 1_700_000_000_000 + i }));
    for (const message of later) outbox.write(message);
    await outbox.flush();
    await until(() => changes > 0, 'the watcher to see the new entries');
    expect(insertIds((await source.read()).messages)).toEqual(insertIds([...first, ...later]));

    // Nothing consumed: no consumer of ours in the group, nothing pending, nothing acknowledged or deleted.
    const groups = (await redis.client.call('XINFO', 'GROUPS', STREAM)) as unknown[][];
    expect(groups).toHaveLength(1);
    const consumers = (await redis.client.call(
      'XINFO',
      'CONSUMERS',
      STREAM,
      'idstitch-delivery',
    )) as unknown[];
    expect(consumers).toEqual([]);
    expect(await pendingCount(redis.client, STREAM)).toBe(0);
    expect(await redis.client.xlen(STREAM)).toBe(5);

    // The worker still delivers all of them; the source then shows none pending, and saw them go.
    const seen = changes;
    const worker = new OutboxWorker({ redis: redis.url, mixpanel: fastMixpanel(fake), blockMs: 100 });
    cleanups.push(() => worker.close(0));
    worker.start();
    await until(() => fake.insertIds().size === 5, 'the worker to deliver every entry');
    expect(fake.insertIds()).toEqual(new Set(insertIds([...first, ...later])));
    await until(
      async () => (await redis.client.xlen(STREAM)) === 0,
      'the delivered entries to leave the stream',
    );
    await until(() => changes > seen, 'the watcher to see the entries go');
    expect((await source.read()).messages).toEqual([]);

    stop();
    await source.close?.();
    await until(
      async () => (await inspectorConnections()).length === 0,
      'the inspector connections to close',
    );
  });

  it('checks its options at start-up, naming the option and the fix', () => {
    expect(() => redisOutboxSource({ redis: 'localhost:6379' })).toThrow(
      /redis.*redis:\/\/ or rediss:\/\/ URL/,
    );
    expect(() => redisOutboxSource({ redis: redis.url, stream: ' ' })).toThrow(/stream.*non-empty key name/);
    expect(() => redisOutboxSource({ redis: redis.url, blockMs: 0 })).toThrow(
      /blockMs.*integer from 1 to 10000/,
    );
    expect(() => inspector({ source: [] })).toThrow(/source.*empty list.*spoolSource/);
  });
});
