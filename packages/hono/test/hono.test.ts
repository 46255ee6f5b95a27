import { createAdaptorServer } from '@hono/node-server';
import { IdstitchOptionsError, MemorySink } from '@idstitch/core/web';
import { Hono } from 'hono';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { getTracker, idstitch, tryGetTracker } from '../src/index.js';

const SECRET = 'hono-test-secret-0123456789';

describe('@idstitch/hono', () => {
  it('validates options when the middleware is created', () => {
    expect(() => idstitch({ cookie: { maxAge: 365 * 24 * 3600 * 1000 } })).toThrow(IdstitchOptionsError);
  });

  it("sets the device cookie next to the app's own, on an error response too", async () => {
    const sink = new MemorySink();
    const app = new Hono();
    app.use(idstitch({ sink, cookie: { secret: SECRET } }));
    app.get('/', (c) => {
      c.get('tracker').track('Home');
      c.header('Set-Cookie', 'theme=dark; Path=/', { append: true });
      return c.text('ok');
    });
    app.get('/boom', (c) => {
      c.get('tracker').track('before failure');
      throw new Error('handler failed');
    });
    const server = createAdaptorServer({ fetch: app.fetch });
    const ok = await request(server).get('/').expect(200);
    const names = (ok.headers['set-cookie'] as unknown as string[]).map((line) => line.split('=')[0]).sort();
    expect(names).toEqual(['idstitch_device', 'theme']);
    const failed = await request(server).get('/boom').expect(500);
    expect((failed.headers['set-cookie'] as unknown as string[])[0]).toContain(
      sink.events[1]!.properties.$device_id,
    );
  });

  it('hands the flush to executionCtx.waitUntil where the runtime has one (Workers, Vercel)', async () => {
    const sink = new MemorySink();
    let flushed = 0;
    const counting = {
      ...sink,
      write: sink.write.bind(sink),
      flush: async () => void flushed++,
      close: async () => {},
    };
    const app = new Hono();
    app.use(idstitch({ sink: counting }));
    app.get('/', (c) => {
      c.get('tracker').track('Home');
      return c.text('ok');
    });
    const pending: Promise<unknown>[] = [];
    const executionCtx = {
      waitUntil: (p: Promise<unknown>) => pending.push(p),
      passThroughOnException() {},
      props: {},
    };
    const response = await app.fetch(new Request('https://shop.example/'), {}, executionCtx);
    expect(response.status).toBe(200);
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect(flushed).toBe(1);
    expect(response.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('getTracker() explains the missing middleware; tryGetTracker() returns undefined', async () => {
    const app = new Hono();
    app.get('/', (c) => {
      try {
        getTracker(c);
        return c.json({ message: 'no error' });
      } catch (error) {
        return c.json({ missing: tryGetTracker(c) === undefined, message: (error as Error).message });
      }
    });
    const response = await app.fetch(new Request('http://localhost/'));
    expect(await response.json()).toEqual({
      missing: true,
      message: expect.stringMatching(/app\.use\(idstitch/),
    });
  });
  it('geolocate: the connection address by default, a configured header only through clientIp', async () => {
    const serveWith = (options: Parameters<typeof idstitch>[0]) => {
      const sink = new MemorySink();
      const app = new Hono();
      app.use(idstitch({ sink, cookie: { secret: SECRET }, ...options }));
      app.get('/', (c) => {
        c.get('tracker').track('Home');
        return c.text('ok');
      });
      return { sink, server: createAdaptorServer({ fetch: app.fetch }) };
    };
    const byDefault = serveWith({ geolocate: true });
    await request(byDefault.server).get('/').set('X-Forwarded-For', '203.0.113.7').expect(200);
    expect(byDefault.sink.events[0]!.properties.ip).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);

    const behindProxy = serveWith({ geolocate: true, clientIp: (c) => c.req.header('x-real-ip') });
    await request(behindProxy.server).get('/').set('X-Real-IP', '198.51.100.4').expect(200);
    expect(behindProxy.sink.events[0]!.properties.ip).toBe('198.51.100.4');

    let asked = 0;
    const withoutGeolocate = serveWith({ clientIp: () => `198.51.100.${++asked}` });
    await request(withoutGeolocate.server).get('/').expect(200);
    expect(withoutGeolocate.sink.events[0]!.properties.ip).toBeUndefined();
    expect(asked).toBe(0);

    expect(() => idstitch({ clientIp: 'x-real-ip' as never })).toThrow(/option `clientIp`/);
  });
});
