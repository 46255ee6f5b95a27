// A held `$add` in flight when Redis stalls (SIGSTOP): the hold times out on the client, runs when Redis
// wakes up, and is retried from the local buffer. It must land once: in the list, and in the byte counter
// the hold script increments.
import type { HeldProfileUpdate, IdstitchError } from '@idstitch/core';
import { RedisIdentityStore, type RedisIdentityStoreOptions } from '@idstitch/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';

let redis: RedisServer;
const stores: RedisIdentityStore[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(async () => {
  redis.resume();
  await Promise.all(stores.splice(0).map((store) => store.close(0)));
  await redis.client.flushall();
});
afterAll(() => redis.stop());

function createStore(options: Partial<RedisIdentityStoreOptions> = {}) {
  const errors: IdstitchError[] = [];
  const store = new RedisIdentityStore({
    redis: redis.url,
    onError: (error) => errors.push(error),
    ...options,
  });
  stores.push(store);
  return { store, errors };
}

const add = (logins: number): HeldProfileUpdate => ({ $add: { logins }, heldAt: Date.now() });

/** What the hold script counts for one device: its entries' lengths plus DEVICE_OVERHEAD_BYTES (256). */
async function expectedBytes(deviceId: string): Promise<number> {
  const entries = await redis.client.lrange(`idstitch:held:${deviceId}`, 0, -1);
  return entries.reduce((sum, entry) => sum + Buffer.byteLength(entry), 256 + deviceId.length);
}

describe('a held $add in flight while Redis stalls (SIGSTOP)', () => {
  it('is applied exactly once: the retry carries the same entry ID and the receipts skip it', async () => {
    const { store, errors } = createStore({ commandTimeoutMs: 300 });
    await store.hold('device-1', add(1));

    redis.pause();
    // Sent to the frozen Redis and not answered: it times out here, and Redis runs it when it wakes up.
    await store.hold('device-1', add(10));
    expect(store.stats().buffered).toBe(1);
    // Meanwhile the buffer is retried (each attempt also waits in Redis) and the outage is reported.
    await until(() => errors.some((e) => e.details.state === 'down'), 'the outage to be reported');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    redis.resume();
    await until(() => store.stats().buffered === 0 && !store.stats().redisDown, 'the buffer to be written');

    // Every attempt ran; one landed. The counter the script increments counts the entry once.
    expect(await redis.client.llen('idstitch:held:device-1')).toBe(2);
    expect(Number(await redis.client.get('idstitch:held-total'))).toBe(await expectedBytes('device-1'));
    expect(store.stats().heldBytes).toBe(Number(await redis.client.get('idstitch:held-total')));

    // Another instance takes at login: the stalled $add is applied once.
    const taken = await createStore().store.take('device-1');
    expect(taken.map((update) => update.$add?.logins)).toEqual([1, 10]);

    // Conservation: every update given to hold() is held, buffered or dropped for a reason.
    const stats = store.stats();
    const droppedBeforeRedis =
      stats.dropped['local buffer limit'] + stats.dropped.shutdown + stats.dropped.in_doubt;
    expect(stats).toMatchObject({ received: 2, held: 2, buffered: 0 });
    expect(stats.received).toBe(stats.held + stats.buffered + droppedBeforeRedis);
    expect(Object.values(stats.dropped).every((count) => count === 0)).toBe(true);
  });

  it('a retry after another instance took the update does not bring it back', async () => {
    const { store } = createStore({ commandTimeoutMs: 300 });
    const other = createStore().store;
    await store.hold('device-1', add(1));
    redis.pause();
    await store.hold('device-1', add(10));
    redis.resume();
    // The first attempt ran when Redis woke up; another instance takes it before this one retries.
    await until(
      async () => (await redis.client.llen('idstitch:held:device-1')) >= 2,
      'the timed-out hold to run',
    );
    const first = await other.take('device-1');
    await until(() => store.stats().buffered === 0, 'the retry');
    const second = await other.take('device-1');
    const logins = [...first, ...second].reduce((sum, update) => sum + Number(update.$add?.logins ?? 0), 0);
    expect(logins).toBe(11);
  });
});
