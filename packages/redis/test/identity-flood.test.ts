// Proof: a flood of cookie-less requests that each set anonymous traits (bots, scripts, link previews)
// cannot fill a small Redis with held updates, and events keep being delivered meanwhile.
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, type Instance, startInstance } from './helpers/instances.js';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, fastMixpanel, TOKEN } from './helpers/setup.js';

const FLOOD = 4500;
const CONCURRENCY = 16;
let redis: RedisServer;
let fake: FakeMixpanel;
let instance: Instance;

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer({ args: ['--maxmemory', '16mb', '--maxmemory-policy', 'noeviction'] }),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
  instance = await startInstance({ redisUrl: redis.url, mixpanel: fastMixpanel(fake) });
});
afterAll(async () => {
  await instance?.close();
  await Promise.all([redis?.stop(), fake?.close()]);
});

async function usedMemory(): Promise<number> {
  const info = await redis.client.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

describe('a flood of cookie-less anonymous people.set on a 16 MB noeviction Redis', () => {
  it('held updates stay within their budget, drops are counted, and events are still delivered', async () => {
    let next = 0;
    const statuses = new Map<number, number>();
    const client = async () => {
      while (next < FLOOD) {
        next += 1;
        // A new visitor every time: no cookie is ever sent back.
        const response = await fetch(`${instance.url}/profile`, { method: 'POST' });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    expect(statuses).toEqual(new Map([[204, FLOOD]]));

    // About 18 MB of traits were held; the store kept to a quarter of maxmemory and said what it dropped.
    await until(() => instance.identityStore.stats().held === FLOOD, 'every hold to land');
    const stats = instance.identityStore.stats();
    expect(stats.maxBytes).toBe(4 * 1024 * 1024);
    expect(stats.heldBytes).toBeLessThanOrEqual(stats.maxBytes);
    expect(stats.dropped['store limit']).toBeGreaterThan(0);
    expect(await usedMemory()).toBeLessThan(16 * 1024 * 1024);

    // Events of a real visitor still reach Mixpanel.
    const browser = new Browser();
    for (let page = 0; page < 20; page += 1) {
      expect(await browser.send(instance, 'GET', `/track/AfterFlood?page=${page}`)).toBe(204);
    }
    await until(
      () => fake.events.filter((event) => event.event === 'AfterFlood').length === 20,
      'the events after the flood to be delivered',
    );
    expect(instance.outbox.stats()).toMatchObject({ buffered: 0, redisDown: false });
    expect(instance.errors.filter((error) => error.details.fault === 'oom')).toEqual([]);
  }, 120_000);
});
