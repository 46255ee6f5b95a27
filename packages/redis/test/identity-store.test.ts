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
  await redis.ensureRunning();
  await redis.client.flushall();
});
afterAll(() => redis.stop());

function createStore(options: Partial<RedisIdentityStoreOptions> = {}) {
  const errors: IdstitchError[] = [];
  const drops: [string, number, string][] = [];
  const store = new RedisIdentityStore({
    redis: redis.url,
    onError: (error) => errors.push(error),
    onDrop: (deviceId, count, reason) => drops.push([deviceId, count, reason]),
    ...options,
  });
  stores.push(store);
  return { store, errors, drops };
}

const update = (name: string, heldAt = Date.now()): HeldProfileUpdate => ({ $set: { name }, heldAt });

describe('RedisIdentityStore', () => {
  it('holds updates under the prefix with a TTL, and take returns them oldest first and removes them', async () => {
    const { store } = createStore({ prefix: 'shop:', maxAgeMs: 60_000 });
    await store.hold('device-1', update('a', 1000 + Date.now()));
    await store.hold('device-1', update('b', 2000 + Date.now()));
    const keys = (await redis.client.keys('*')).sort();
    expect(keys.slice(0, 4)).toEqual([
      'shop:held-bytes',
      'shop:held-index',
      'shop:held-total',
      'shop:held:device-1',
    ]);
    // And this writer's receipts (see lua/held.ts), which expire.
    expect(keys.slice(4)).toEqual([expect.stringMatching(/^shop:writer:[0-9a-f]{16}$/)]);
    expect(await redis.client.pttl(keys[4]!)).toBeGreaterThan(0);
    const ttl = await redis.client.pttl('shop:held:device-1');
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);

    const taken = await store.take('device-1');
    expect(taken.map((u) => u.$set?.name)).toEqual(['a', 'b']);
    expect(await store.take('device-1')).toEqual([]);
    expect(await redis.client.exists('shop:held:device-1')).toBe(0);
    // Nothing is left behind: the take's claim went once this process had the updates.
    await until(async () => (await redis.client.exists('shop:claim:device-1')) === 0, 'the claim to go');
    expect(await redis.client.get('shop:held-total')).toBe('0');
    expect(await redis.client.zcard('shop:held-index')).toBe(0);
  });

  it('keeps apps with different prefixes apart on one Redis', async () => {
    const shop = createStore({ prefix: 'shop:' }).store;
    const blog = createStore({ prefix: 'blog:' }).store;
    await shop.hold('device-1', update('shop'));
    await blog.hold('device-1', update('blog'));
    expect((await blog.take('device-1')).map((u) => u.$set?.name)).toEqual(['blog']);
    expect((await shop.take('device-1')).map((u) => u.$set?.name)).toEqual(['shop']);
  });

  it('bounds each device, dropping the oldest and telling onDrop', async () => {
    const { store, drops } = createStore({ maxUpdatesPerDevice: 3 });
    for (const name of ['1', '2', '3', '4', '5']) await store.hold('device-1', update(name));
    expect(drops).toEqual([
      ['device-1', 1, 'per-device limit'],
      ['device-1', 1, 'per-device limit'],
    ]);
    expect((await store.take('device-1')).map((u) => u.$set?.name)).toEqual(['3', '4', '5']);
  });

  it('drops updates older than maxAgeMs on take', async () => {
    let now = Date.now();
    const { store, drops } = createStore({ maxAgeMs: 1000, now: () => now });
    await store.hold('device-1', update('old', now));
    now += 500;
    await store.hold('device-1', update('fresh', now));
    now += 700;
    expect((await store.take('device-1')).map((u) => u.$set?.name)).toEqual(['fresh']);
    expect(drops).toEqual([['device-1', 1, 'expired']]);
  });

  it('is atomic: of many concurrent takes through several connections, exactly one gets the updates', async () => {
    const stores = [createStore().store, createStore().store, createStore().store];
    for (let round = 0; round < 20; round += 1) {
      const device = `device-${round}`;
      await stores[0]!.hold(device, update('x'));
      await stores[1]!.hold(device, update('y'));
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.take(device)),
      );
      const winners = results.filter((taken) => taken.length > 0);
      expect(winners).toHaveLength(1);
      expect(winners[0]!.map((u) => u.$set?.name)).toEqual(['x', 'y']);
    }
  });

  it('while Redis is down: buffers holds locally (bounded), reports the outage once, and writes them when Redis is back', async () => {
    const { store, errors, drops } = createStore({ maxBufferedUpdates: 3, takeRetryMs: 0 });
    const other = createStore().store;
    await store.hold('device-1', update('before'));
    await redis.crash();
    // Holds never reject and never wait for Redis: they go to the local buffer.
    await store.hold('device-1', update('during-1'));
    await store.hold('device-2', update('during-2'));
    await store.hold('device-3', update('during-3'));
    await store.hold('device-4', update('during-4'));
    expect(store.stats()).toMatchObject({ buffered: 3, redisDown: true });
    // Past the bound the least recently held device goes, and onDrop is told.
    expect(drops).toEqual([['device-1', 1, 'local buffer limit']]);
    expect(errors.filter((e) => e.details.state === 'down')).toHaveLength(1);
    // A take that cannot reach Redis rejects (the engine reports store_failed) and keeps what it had.
    await expect(store.take('device-2')).rejects.toMatchObject({ code: 'store_failed' });
    expect(store.stats().buffered).toBe(3);

    await redis.restart();
    await until(
      () => store.stats().buffered === 0 && !store.stats().redisDown,
      'the buffer to be written to Redis',
    );
    expect(errors.filter((e) => e.details.state === 'recovered')).toHaveLength(1);
    // Written to Redis, so another instance takes them.
    expect((await other.take('device-2')).map((u) => u.$set?.name)).toEqual(['during-2']);
    expect((await other.take('device-4')).map((u) => u.$set?.name)).toEqual(['during-4']);
    // The server restarted without persistence, so what was held before the crash is gone.
    expect(await other.take('device-1')).toEqual([]);
  });

  it('take retries while Redis is briefly down, off the request path', async () => {
    const { store } = createStore({ takeRetryMs: 10_000 });
    const other = createStore().store;
    await store.hold('device-1', update('kept'));
    await redis.crash();
    await store.hold('device-1', update('buffered'));
    const taking = store.take('device-1');
    await redis.restart();
    // Restarted without persistence: only what this process buffered survives.
    expect((await taking).map((u) => u.$set?.name)).toEqual(['buffered']);
    expect(await other.take('device-1')).toEqual([]);
  });

  it('bounds the bytes and devices held under the prefix: the least recently held devices go, each drop counted', async () => {
    const { store, drops } = createStore({ maxBytes: 20_000, maxDevices: 1000 });
    const big = (i: number) => ({ $set: { bio: `${i}`.padEnd(900, '.') }, heldAt: Date.now() });
    for (let i = 0; i < 60; i += 1) await store.hold(`device-${i}`, big(i));
    const total = Number(await redis.client.get('idstitch:held-total'));
    expect(total).toBeLessThanOrEqual(20_000);
    expect(store.stats().heldBytes).toBe(total);
    const evicted = drops.filter(([, , reason]) => reason === 'store limit');
    expect(evicted.length).toBeGreaterThan(30);
    expect(store.stats().dropped['store limit']).toBe(evicted.length);
    // The oldest went first; the latest are still there.
    expect(evicted[0]?.[0]).toBe('device-0');
    expect((await store.take('device-59')).map((u) => u.$set?.bio)).toHaveLength(1);
    expect(await store.take('device-0')).toEqual([]);
    // Redis holds what the index says, no more.
    const lists = await redis.client.keys('idstitch:held:*');
    expect(lists.length).toBe(await redis.client.zcard('idstitch:held-index'));
  });

  it('bounds the devices and the bytes of one device', async () => {
    const { store, drops } = createStore({ maxDevices: 5, maxBytesPerDevice: 4096 });
    for (let i = 0; i < 8; i += 1) await store.hold(`device-${i}`, update(`${i}`));
    expect(await redis.client.zcard('idstitch:held-index')).toBe(5);
    expect(drops.filter(([, , reason]) => reason === 'store limit').map(([id]) => id)).toEqual([
      'device-0',
      'device-1',
      'device-2',
    ]);
    for (let i = 0; i < 5; i += 1) await store.hold('device-7', update(''.padEnd(1000, `${i}`)));
    const kept = await store.take('device-7');
    expect(kept.length).toBeLessThan(6);
    expect(drops.some(([id, , reason]) => id === 'device-7' && reason === 'per-device limit')).toBe(true);
  });

  it('a take that timed out in a stalled Redis (SIGSTOP) and ran on resume loses nothing: its retry gets the updates', async () => {
    const { store } = createStore({ commandTimeoutMs: 300, takeRetryMs: 20_000 });
    await store.hold('device-1', update('a'));
    await store.hold('device-1', update('b'));
    redis.pause();
    const taking = store.take('device-1');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    redis.resume();
    expect((await taking).map((u) => u.$set?.name)).toEqual(['a', 'b']);
    expect(await createStore().store.take('device-1')).toEqual([]);
  });

  it('a take that gave up during a stall puts the updates back: the next login gets them, once', async () => {
    const { store, errors } = createStore({ commandTimeoutMs: 300, takeRetryMs: 0 });
    const other = createStore().store;
    await store.hold('device-1', update('a'));
    await store.hold('device-1', update('b'));
    redis.pause();
    await expect(store.take('device-1')).rejects.toMatchObject({ code: 'store_failed' });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    redis.resume();
    let taken: HeldProfileUpdate[] = [];
    await until(async () => {
      taken = await other.take('device-1');
      return taken.length > 0;
    }, 'the updates to be put back');
    expect(taken.map((u) => u.$set?.name)).toEqual(['a', 'b']);
    expect(await other.take('device-1')).toEqual([]);
    expect(errors.find((e) => e.details.state === 'down')?.message).toContain(
      'no answer in time from redis://',
    );
  });

  it('a hold that timed out in a stalled Redis and is written again from the buffer is taken once', async () => {
    const { store } = createStore({ commandTimeoutMs: 300 });
    await store.hold('device-0', update('connected'));
    redis.pause();
    await store.hold('device-1', update('once'));
    expect(store.stats().buffered).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    redis.resume();
    await until(() => store.stats().buffered === 0, 'the buffer to be written');
    expect((await store.take('device-1')).map((u) => u.$set?.name)).toEqual(['once']);
  });

  it('close() against a frozen Redis returns by its deadline and counts the hold in flight as in_doubt', async () => {
    const { store, drops } = createStore({ commandTimeoutMs: 5000 });
    await store.hold('device-0', update('connected'));
    redis.pause();
    const holding = store.hold('device-1', update('in flight'));
    // The hold goes out on this tick; Redis has it and does not answer.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await store.close(300);
    // A bound, not a timing: the hold would wait 5 s for its answer, QUIT as well.
    expect(Date.now() - started).toBeLessThan(300 + 1500);
    await holding;

    const stats = store.stats();
    expect(drops).toEqual([['device-1', 1, 'in_doubt']]);
    expect(stats).toMatchObject({ received: 2, held: 1, buffered: 0 });
    expect(stats.received).toBe(
      stats.held +
        stats.buffered +
        stats.dropped['local buffer limit'] +
        stats.dropped.shutdown +
        stats.dropped.in_doubt,
    );
    // In doubt indeed: Redis runs it when it wakes up.
    redis.resume();
    await until(async () => (await redis.client.llen('idstitch:held:device-1')) === 1, 'the hold to run');
  });

  it('keeps each writer’s newest 4096 receipts, expiring an hour after its last hold', async () => {
    const { store } = createStore();
    for (let batch = 0; batch < 41; batch += 1) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => store.hold(`device-${i}`, update(`${batch}-${i}`))),
      );
    }
    const [key, ...others] = await redis.client.keys('idstitch:writer:*');
    expect(others).toEqual([]);
    expect(await redis.client.zcard(key!)).toBe(4096);
    const ttl = await redis.client.pttl(key!);
    expect(ttl).toBeGreaterThan(59 * 60 * 1000);
    expect(ttl).toBeLessThanOrEqual(60 * 60 * 1000);
    expect(store.stats()).toMatchObject({ received: 4100, held: 4100 });
    // The newest stay (a retry of them is still recognised): the 4 oldest went, no other.
    const idOf = async (device: string, index: number) =>
      (JSON.parse((await redis.client.lindex(`idstitch:held:${device}`, index))!) as { i: string }).i;
    for (let i = 0; i < 4; i += 1)
      expect(await redis.client.zscore(key!, await idOf(`device-${i}`, 0))).toBeNull();
    expect(await redis.client.zscore(key!, await idOf('device-4', 0))).toBe('0');
    expect(await redis.client.zscore(key!, await idOf('device-99', -1))).toBe('0');
  });

  it('rejects bad options with a TypeError naming the option', () => {
    expect(() => new RedisIdentityStore({ redis: redis.url, prefix: '' })).toThrow(/`prefix`/);
    expect(() => new RedisIdentityStore({ redis: redis.url, maxUpdatesPerDevice: 0 })).toThrow(
      /`maxUpdatesPerDevice`/,
    );
    expect(() => new RedisIdentityStore({ redis: 42 as never })).toThrow(/`redis`/);
  });
});
