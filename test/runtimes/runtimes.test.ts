/**
 * The Hono adapter on each JavaScript server runtime, with the runtime's own npm-distributed binary: Node
 * (`@hono/node-server`), Bun, Deno and Cloudflare's workerd (the Workers module bundled for a neutral platform,
 * served by `workerd` from a capnp config). Each runs as a real child process on a loopback port; the journey
 * table and the example shop go over real HTTP with real cookies, and the events must arrive at the fake
 * Mixpanel over HTTP (the runtime's `fetch`, gzip'd). Under CI=true a missing runtime fails; elsewhere it is skipped.
 */
import { join, resolve } from 'node:path';
import type { MixpanelEvent } from '@idstitch/core/web';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJourneyEvents } from '../harness/run-journey.js';
import { type Journey, journeys } from '../journeys.js';
import { CookieJar } from './cookie-jar.js';
import { type RuntimeProcess, runtimes } from './runtimes.js';

const here = import.meta.dirname;
const example = resolve(here, '../../examples/hono/src');
const TOKEN = 'runtime-token';
const ci = process.env.CI === 'true';

/** The prefix of the journey app that serves a journey's configuration. */
function prefixOf(journey: Journey): string {
  if (journey.idMerge === 'original') return '/original';
  return journey.resetOnLogout === false ? '/simplified-keep' : '/simplified';
}

async function expectStatus(response: Promise<Response>, status: number): Promise<Response> {
  const answered = await response;
  expect(answered.status, `${answered.url}`).toBe(status);
  return answered;
}

/** Replays a journey over real HTTP, one cookie jar per client. */
async function replay(url: string, journey: Journey): Promise<void> {
  const jars = new Map<string, CookieJar>();
  for (const step of journey.steps) {
    let jar = jars.get(step.client);
    if (!jar) {
      jar = new CookieJar();
      jars.set(step.client, jar);
    }
    const base = `${url}${prefixOf(journey)}`;
    if ('track' in step)
      await expectStatus(jar.fetch(`${base}/track/${encodeURIComponent(step.track)}`), 204);
    else if ('login' in step)
      await expectStatus(jar.fetch(`${base}/login/${step.login}`, { method: 'POST' }), 204);
    else if ('logout' in step) await expectStatus(jar.fetch(`${base}/logout`, { method: 'POST' }), 204);
    else await expectStatus(jar.fetch(`${base}/reset`, { method: 'POST' }), 204);
  }
}

/**
 * The events the fake accepted, in the order they were tracked. A Worker delivers each request's events from that
 * request's `waitUntil`, so two requests' deliveries may overtake each other: there, order by `time` (ms; workerd's
 * clock moves between requests), keeping arrival order within a millisecond.
 */
function delivered(fake: FakeMixpanel, runtime: string): MixpanelEvent[] {
  const events = [...fake.events] as unknown as MixpanelEvent[];
  if (runtime === 'workerd') events.sort((a, b) => Number(a.properties.time) - Number(b.properties.time));
  return events;
}

/** Every request that carried events arrived gzip'd at `/track`, and every one was accepted. */
function expectGzipDelivery(fake: FakeMixpanel): void {
  const eventRequests = fake.requests.filter((request) => request.endpoint === 'track');
  expect(eventRequests.length).toBeGreaterThan(0);
  for (const request of eventRequests) {
    expect(request.gzip, 'gzip body').toBe(true);
    expect(request.status).toBe(200);
  }
}

/** Waits until the fake holds `count` events: a Worker delivers in `waitUntil`, after the response. */
async function eventsArrive(fake: FakeMixpanel, count: number): Promise<void> {
  while (fake.events.length < count) await fake.waitForRequests(fake.requests.length + 1);
}

describe.each(runtimes)('Hono on $name', (runtime) => {
  const missing = runtime.missing();
  if (missing !== undefined && ci) {
    it('is installed (CI=true requires every runtime)', () => {
      throw new Error(`${runtime.name}: ${missing}`);
    });
    return;
  }
  const entry = (name: string) =>
    runtime.name === 'workerd'
      ? `${name === 'example' ? join(example, 'worker.ts') : join(here, 'app/worker.ts')}`
      : name === 'example'
        ? join(example, `${runtime.name}.ts`)
        : join(here, `app/${runtime.name}.ts`);

  describe.skipIf(missing !== undefined)(missing ?? 'journeys', () => {
    let fake: FakeMixpanel;
    let server: RuntimeProcess;
    beforeAll(async () => {
      fake = await startFakeMixpanel({ token: TOKEN });
      server = await runtime.start(entry('journeys'), { MIXPANEL_TOKEN: TOKEN, MIXPANEL_HOST: fake.url });
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
      await fake?.close();
    });

    it.each(journeys)('$name', async (journey) => {
      fake.clear();
      await replay(server.url, journey);
      await expectStatus(fetch(`${server.url}/flush`, { method: 'POST' }), 204);
      if (runtime.name === 'workerd') await eventsArrive(fake, journey.expected.length);
      expectJourneyEvents(delivered(fake, runtime.name), journey.expected);
      expectGzipDelivery(fake);
    });

    it('geolocate sends the connection address the runtime gives Hono, and no header is trusted', async () => {
      fake.clear();
      const jar = new CookieJar();
      await expectStatus(
        jar.fetch(`${server.url}/geolocate/track/located`, { headers: { 'x-forwarded-for': '203.0.113.7' } }),
        204,
      );
      await expectStatus(fetch(`${server.url}/flush`, { method: 'POST' }), 204);
      if (runtime.name === 'workerd') await eventsArrive(fake, 1);
      expect(fake.events.map((event) => event.event)).toEqual(['located']);
      const ip = fake.events[0]!.properties.ip;
      // Workers have no socket address to give; elsewhere the loopback client.
      if (runtime.name === 'workerd') expect(ip).toBeUndefined();
      else expect(String(ip)).toMatch(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
    });
  });

  describe.skipIf(missing !== undefined)(missing ?? 'the example shop', () => {
    it('browse, log in, buy, log out: the events reach Mixpanel (the fake) from the runtime', async () => {
      const fake = await startFakeMixpanel({ token: TOKEN });
      const shop = await runtime.start(entry('example'), {
        MIXPANEL_TOKEN: TOKEN,
        MIXPANEL_HOST: fake.url,
        IDSTITCH_COOKIE_SECRET: 'an-example-secret-of-32-characters',
      });
      try {
        const browser = new CookieJar();
        const home = await expectStatus(browser.fetch(`${shop.url}/`), 200);
        expect(await home.text()).toContain('idstitch example shop (Hono)');
        const form = (fields: Record<string, string>) => ({
          method: 'POST',
          body: new URLSearchParams(fields),
        });
        await expectStatus(browser.fetch(`${shop.url}/login`, form({ userId: 'shopper-1' })), 303);
        await expectStatus(browser.fetch(`${shop.url}/purchase`, form({ amount: '19.99' })), 303);
        await expectStatus(browser.fetch(`${shop.url}/logout`, { method: 'POST' }), 303);
        const anonymous = (await (await expectStatus(browser.fetch(`${shop.url}/identity`), 200)).json()) as {
          userId?: string;
        };
        expect(anonymous.userId).toBeUndefined();
        const health = await expectStatus(fetch(`${shop.url}/healthz`), 200);
        expect(health.headers.getSetCookie()).toEqual([]);
        // Node, Bun and Deno deliver on SIGTERM (the example closes its sink); a Worker after each response.
        if (runtime.name === 'workerd') await eventsArrive(fake, 3);
        else expect(await shop.stop()).toBe(0);
        const events = delivered(fake, runtime.name);
        expect(events.map((event) => [event.event, event.properties.$user_id ?? null])).toEqual([
          ['Page Viewed', null],
          ['Identified', 'shopper-1'],
          ['Purchase', 'shopper-1'],
        ]);
        expect(events[2]!.properties).toMatchObject({ amount: 19.99 });
        expectGzipDelivery(fake);
      } finally {
        await shop.stop();
        await fake.close();
      }
    }, 60_000);
  });
  // Workers have no NODE_ENV: the one runtime where idstitch must decide on its own that it is production.
  if (runtime.name !== 'workerd') return;
  describe.skipIf(missing !== undefined)('fails closed without a secret', () => {
    it('the example Worker refuses to track without IDSTITCH_COOKIE_SECRET, unless told it is development', async () => {
      for (const [env, status] of [
        [{}, 500],
        [{ IDSTITCH_ENVIRONMENT: 'development' }, 200],
      ] as const) {
        const shop = await runtime.start(entry('example'), env);
        try {
          const response = await fetch(`${shop.url}/pricing`);
          expect(response.status).toBe(status);
          if (status === 500) expect(shop.output()).toMatch(/cookie\.secret.*no NODE_ENV can be read/);
          else expect(response.headers.getSetCookie().join()).toMatch(/idstitch_device=/);
        } finally {
          await shop.stop();
        }
      }
    });
  });
});
