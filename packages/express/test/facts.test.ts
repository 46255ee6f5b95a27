import { MemorySink } from '@idstitch/core';
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { idstitch } from '../src/index.js';

const SECRET = 'express-facts-test-secret-0123';
const GETTERS = ['secure', 'protocol', 'host'] as const;
type Getter = (typeof GETTERS)[number];

/** Counts reads of Express's own getters, left in place on Express's request object (so they stay its own). */
function countExpressGetters(): { counts: Record<Getter, number>; restore(): void } {
  const base = express.request as object;
  const counts = { secure: 0, protocol: 0, host: 0 };
  const originals = GETTERS.map((key) => [key, Object.getOwnPropertyDescriptor(base, key)!] as const);
  for (const [key, descriptor] of originals) {
    Object.defineProperty(base, key, {
      ...descriptor,
      get(this: unknown) {
        counts[key] += 1;
        return descriptor.get!.call(this);
      },
    });
  }
  return {
    counts,
    restore: () => {
      for (const [key, descriptor] of originals) Object.defineProperty(base, key, descriptor);
    },
  };
}

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

function trackingApp(configure: (app: express.Express) => void = () => {}) {
  const sink = new MemorySink();
  const app = express();
  configure(app);
  app.use(idstitch({ sink, cookie: { secret: SECRET } }));
  app.get('/page', (req, res) => {
    req.tracker.track('Viewed');
    res.end();
  });
  return { app, sink };
}

function cookieNames(response: request.Response): string[] {
  return ((response.headers['set-cookie'] as unknown as string[] | undefined) ?? []).map(
    (line) => `${line.split('=')[0]}${/; Secure/.test(line) ? ' (Secure)' : ''}`,
  );
}

describe('Express request facts', () => {
  it('reads neither req.secure nor req.host when no X-Forwarded-Proto/-Host is sent, and answers as they would', async () => {
    const getters = countExpressGetters();
    restore = getters.restore;
    const { app, sink } = trackingApp();
    const agent = request.agent(app);
    const first = await agent.get('/page').set('Host', 'shop.example:8080');
    await agent.get('/page').set('Host', 'shop.example:8080');
    expect(cookieNames(first)).toEqual(['idstitch_device']);
    expect(sink.events.map((event) => event.properties.$current_url)).toEqual([
      'http://shop.example:8080/page',
      'http://shop.example:8080/page',
    ]);
    // Each is a miss in V8's caches on Express's per-request hidden class, for a fact the headers already give.
    expect(getters.counts).toEqual({ secure: 0, protocol: 0, host: 0 });
  });

  it('leaves a forwarded protocol and host to Express: trusted only through `trust proxy`', async () => {
    const getters = countExpressGetters();
    restore = getters.restore;
    const untrusted = trackingApp();
    const trusted = trackingApp((app) => app.set('trust proxy', true));
    const forwarded = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'www.example' };
    const plain = await request(untrusted.app).get('/page').set(forwarded);
    const proxied = await request(trusted.app).get('/page').set(forwarded);
    expect(cookieNames(plain)).toEqual(['idstitch_device']);
    expect(untrusted.sink.events[0]!.properties.$current_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/page$/);
    expect(cookieNames(proxied)).toEqual(['__Host-idstitch_device (Secure)']);
    expect(trusted.sink.events[0]!.properties.$current_url).toBe('https://www.example/page');
    expect(getters.counts.secure).toBeGreaterThan(0);
    expect(getters.counts.host).toBeGreaterThan(0);
  });

  it('takes an encrypted socket as HTTPS, as Express does', async () => {
    const { app, sink } = trackingApp((app) =>
      app.use((req, _res, next) => {
        // What a TLS socket carries; Express's req.protocol reads the same flag.
        (req.socket as typeof req.socket & { encrypted?: boolean }).encrypted = true;
        next();
      }),
    );
    const response = await request(app).get('/page');
    expect(cookieNames(response)).toEqual(['__Host-idstitch_device (Secure)']);
    expect(sink.events[0]!.properties.$current_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/page$/);
  });

  it("honours an app's own req.secure, on app.request or on the request itself", async () => {
    const onPrototype = trackingApp((app) => {
      Object.defineProperty(app.request, 'secure', { get: () => true, configurable: true });
    });
    const onRequest = trackingApp((app) =>
      app.use((req, _res, next) => {
        Object.defineProperty(req, 'secure', { value: true, configurable: true });
        next();
      }),
    );
    expect(cookieNames(await request(onPrototype.app).get('/page'))).toEqual([
      '__Host-idstitch_device (Secure)',
    ]);
    expect(cookieNames(await request(onRequest.app).get('/page'))).toEqual([
      '__Host-idstitch_device (Secure)',
    ]);
  });
});
