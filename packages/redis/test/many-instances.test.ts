// Proof: two Express instances behind a load balancer, one Redis. Anonymous traits set through A are
// applied when the user logs in through B; concurrent logins through A and B apply them once.
import type { ProfileUpdate } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, type Instance, startInstance } from './helpers/instances.js';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { API_SECRET, fastMixpanel, TOKEN } from './helpers/setup.js';

let redis: RedisServer;
let fake: FakeMixpanel;
let a: Instance;
let b: Instance;

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer(),
    startFakeMixpanel({ token: TOKEN, apiSecret: API_SECRET }),
  ]);
  [a, b] = await Promise.all([
    startInstance({ redisUrl: redis.url, mixpanel: fastMixpanel(fake) }),
    startInstance({ redisUrl: redis.url, mixpanel: fastMixpanel(fake) }),
  ]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([redis.stop(), fake.close()]);
});

/** Waits until both instances handed on everything and the stream is empty (all delivered). */
async function settled(): Promise<void> {
  await Promise.all([a.engine.flush(), b.engine.flush()]);
  await until(async () => (await redis.client.xlen('shop:outbox')) === 0, 'the outbox to drain');
}

/** The `/engage` updates Mixpanel received that carry the held traits for `user`. */
function traitUpdates(user: string): ProfileUpdate[] {
  return fake.profiles
    .map(({ update }) => update as unknown as ProfileUpdate)
    .filter((update) => update.$distinct_id === user && update.$set?.source === 'landing');
}

describe('two Express instances sharing one Redis', () => {
  it('applies anonymous traits set through A when the user logs in through B', async () => {
    const browser = new Browser();
    expect(await browser.send(a, 'GET', '/track/Landing')).toBe(204);
    expect(await browser.send(a, 'POST', '/traits/pro')).toBe(204);
    const deviceId = await browser.deviceId(a);
    await settled();
    // Held in Redis, not sent: there is no user to attach them to yet.
    expect(await redis.client.llen(`shop:held:${deviceId}`)).toBe(1);
    expect(fake.profiles).toHaveLength(0);

    expect(await browser.send(b, 'POST', '/login/alice')).toBe(204);
    await settled();
    expect(fake.profileState('alice')).toEqual({ plan: 'pro', source: 'landing' });
    expect(traitUpdates('alice')).toHaveLength(1);
    expect(await redis.client.exists(`shop:held:${deviceId}`)).toBe(0);
    // The login event links the device to the user, and both instances' events arrived.
    const aliceEvents = fake.events.filter((event) => event.properties.$device_id === deviceId);
    expect(aliceEvents.map((event) => event.event)).toEqual(['Landing', 'Identified']);
    expect(aliceEvents[1]?.properties.$user_id).toBe('alice');
  });

  it('applies them once when the same login reaches A and B at the same time', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `user-${i}`);
    const browsers = users.map(() => new Browser());
    for (const browser of browsers) await browser.send(a, 'POST', '/traits/team');
    await settled();

    // Each browser logs in through both instances at once (a double submit across the balancer).
    const statuses = await Promise.all(
      browsers.flatMap((browser, i) => [
        browser.send(a, 'POST', `/login/${users[i]}`),
        browser.send(b, 'POST', `/login/${users[i]}`),
      ]),
    );
    expect(statuses.every((status) => status === 204)).toBe(true);
    await settled();

    for (const user of users) {
      expect(traitUpdates(user), user).toHaveLength(1);
      expect(fake.profileState(user)).toEqual({ plan: 'team', source: 'landing' });
    }
    expect(await redis.client.keys('shop:held:*')).toEqual([]);
  });
});
