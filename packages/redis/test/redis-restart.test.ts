// Proof: Redis crashes (SIGKILL) and comes back in the middle of a load; both app instances keep
// answering every request, and every tracked event reaches Mixpanel.
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, type Instance, startInstance } from './helpers/instances.js';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, fastMixpanel, TOKEN } from './helpers/setup.js';

const REQUESTS = 400;
const CONCURRENCY = 8;
let redis: RedisServer;
let fake: FakeMixpanel;
let instances: Instance[] = [];

beforeAll(async () => {
  // Append-only file with an fsync per write: what Redis acknowledged survives the crash.
  [redis, fake] = await Promise.all([
    startRedisServer({ aof: true }),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
  instances = await Promise.all(
    [1, 2].map(() => startInstance({ redisUrl: redis.url, mixpanel: fastMixpanel(fake) })),
  );
});
afterAll(async () => {
  await Promise.all(instances.map((instance) => instance.close()));
  await Promise.all([redis.stop(), fake.close()]);
});

describe('Redis restarted mid-load', () => {
  it('keeps serving every request and loses no event', async () => {
    let completed = 0;
    const statuses: number[] = [];
    let next = 0;
    // Clients share nothing but the load balancer, which alternates between the instances.
    const client = async () => {
      const browser = new Browser();
      while (next < REQUESTS) {
        const page = next++;
        const instance = instances[page % instances.length] as Instance;
        statuses[page] = await browser.send(instance, 'GET', `/track/Load?page=${page}`);
        completed += 1;
      }
    };
    const load = Promise.all(Array.from({ length: CONCURRENCY }, client));

    await until(() => completed >= 100, 'the first 100 requests');
    await redis.crash();
    const crashedAt = completed;
    // A visitor sets traits on the first instance while Redis is away: they wait in its local buffer.
    const visitor = new Browser();
    const [first, second] = instances as [Instance, Instance];
    expect(await visitor.send(first, 'POST', '/traits/outage')).toBe(204);
    await until(() => first.identityStore.stats().buffered === 1, 'the traits in the local buffer');
    expect(first.identityStore.stats().redisDown).toBe(true);
    // Requests go on while Redis is away; it comes back after a good share of them.
    await until(
      () => completed >= crashedAt + 100 || completed === REQUESTS,
      '100 requests during the outage',
    );
    await redis.restart();
    await load;

    expect(statuses).toHaveLength(REQUESTS);
    expect(statuses.every((status) => status === 204)).toBe(true);

    await Promise.all(instances.map((instance) => instance.engine.flush()));
    await until(async () => (await redis.client.xlen('shop:outbox')) === 0, 'the outbox to drain', 30_000);
    const pages = new Set(
      fake.events.filter((event) => event.event === 'Load').map((event) => Number(event.properties.page)),
    );
    expect(pages.size).toBe(REQUESTS);
    expect(fake.events.filter((event) => event.event === 'Load')).toHaveLength(REQUESTS);

    // Written to Redis once it was back, so a login on the other instance applies them.
    await until(() => first.identityStore.stats().buffered === 0, 'the held traits to reach Redis');
    expect(await visitor.send(second, 'POST', '/login/outage-user')).toBe(204);
    await Promise.all(instances.map((instance) => instance.engine.flush()));
    await until(() => fake.profileState('outage-user') !== undefined, 'the traits to be applied');
    expect(fake.profileState('outage-user')).toEqual({ plan: 'outage', source: 'landing' });

    for (const instance of instances) {
      const stats = instance.outbox.stats();
      expect(stats.droppedTotal).toBe(0);
      expect(stats.buffered).toBe(0);
    }
    // The outage was reported (once per component), never a loss.
    const codes = new Set(instances.flatMap((instance) => instance.errors.map((error) => error.code)));
    expect(codes.has('delivery_failed')).toBe(true);
    expect(codes.has('store_failed')).toBe(true);
    for (const lossy of [
      'queue_overflow',
      'shutdown_timeout',
      'after_close',
      'retries_exhausted',
      'held_updates_dropped',
    ] as const) {
      expect(codes.has(lossy), lossy).toBe(false);
    }
  }, 60_000);
});
