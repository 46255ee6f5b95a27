import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type IdstitchError, MemorySink } from '@idstitch/core';
import Router from '@koa/router';
import Koa from 'koa';
import session from 'koa-session';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defaultResolveUserId,
  getTracker,
  type IdstitchKoaOptions,
  idstitch,
  tryGetTracker,
} from '../src/index.js';

const SECRET = 'koa-adapter-test-secret-0123456789';
const DEVICE = /^idstitch_device=(1\.[0-9a-f-]{36}\.[^;]*)/;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

interface AppSetup {
  keys?: string[];
  options?: IdstitchKoaOptions;
  /** Middleware mounted before idstitch (an app's own error handler). */
  before?: Koa.Middleware[];
  routes?: (router: Router) => void;
}

function start({ keys, options, before = [], routes }: AppSetup = {}) {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const app = new Koa();
  app.silent = true; // the thrown errors below are expected
  if (keys) {
    app.keys = keys;
    app.use(session({}, app));
  }
  for (const middleware of before) app.use(middleware);
  const middleware = idstitch({ sink, onError: (error) => errors.push(error), ...options });
  app.use(middleware);
  const router = new Router();
  router.get('/track/:event', (ctx) => {
    ctx.state.tracker.track(ctx.params.event!);
    ctx.status = 204;
  });
  routes?.(router);
  app.use(router.routes());
  const server = createServer(app.callback());
  servers.push(server);
  return { app, sink, errors, server, engine: middleware.idstitch };
}

function deviceCookie(response: request.Response): string | undefined {
  const cookies = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  return cookies.map((line) => DEVICE.exec(line)?.[1]).find(Boolean);
}

function setCookieNames(response: request.Response): string[] {
  const cookies = (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  return cookies.map((line) => line.slice(0, line.indexOf('=')));
}

/** The signature `cookies`/keygrip puts in `<name>.sig`: HMAC-SHA1 of `name=value`, base64url. */
function keygripSign(key: string, data: string): string {
  return createHmac('sha1', key).update(data).digest('base64url');
}

describe('@idstitch/koa', () => {
  it('puts the tracker on ctx.state and behind getTracker()/tryGetTracker()', async () => {
    let seen: unknown[] = [];
    const { server } = start({
      routes: (router) =>
        router.get('/who', (ctx) => {
          seen = [ctx.state.tracker, getTracker(ctx), tryGetTracker(ctx)];
          ctx.body = ctx.state.tracker.identity;
        }),
    });
    const response = await request(server).get('/who').expect(200);
    expect(seen[0]).toBeDefined();
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).toBe(seen[0]);
    expect(response.body.deviceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(deviceCookie(response)).toContain(response.body.deviceId);
  });

  it('getTracker() explains the missing middleware; tryGetTracker() returns undefined', async () => {
    const app = new Koa();
    let error: unknown;
    let tried: unknown = 'unset';
    app.use((ctx) => {
      tried = tryGetTracker(ctx);
      try {
        getTracker(ctx);
      } catch (caught) {
        error = caught;
      }
      ctx.status = 204;
    });
    const server = createServer(app.callback());
    servers.push(server);
    await request(server).get('/').expect(204);
    expect(tried).toBeUndefined();
    expect(String(error)).toMatch(/app\.use\(idstitch\(options\)\)/);
  });

  it('resolves the user from ctx.state.user.id (koa-passport), then ctx.session.userId (koa-session)', () => {
    const ctx = (state: object, session?: object) => ({ state, session }) as unknown as Koa.Context;
    expect(defaultResolveUserId(ctx({ user: { id: 'passport' } }, { userId: 'session' }))).toBe('passport');
    expect(defaultResolveUserId(ctx({}, { userId: 'session' }))).toBe('session');
    expect(defaultResolveUserId(ctx({ user: null }, null as unknown as object))).toBeUndefined();
  });

  it('settles after downstream middleware: a login in the handler identifies in the same request', async () => {
    const { server, sink } = start({
      keys: ['k1'],
      routes: (router) =>
        router.post('/login', (ctx) => {
          ctx.state.tracker.track('Login Page Submitted');
          ctx.session!.userId = 'U1';
          ctx.status = 204;
        }),
    });
    const agent = request.agent(server);
    await agent.post('/login').expect(204);
    expect(sink.events.map((event) => event.event)).toEqual(['Login Page Submitted', 'Identified']);
    await agent.get('/track/after').expect(204);
    const [, identified, after] = sink.events;
    expect(after!.properties.$user_id).toBe('U1');
    expect(after!.properties.$device_id).toBe(identified!.properties.$device_id);
  });

  describe('when downstream throws', () => {
    const throwing = (router: Router) => {
      router.post('/checkout', (ctx) => {
        ctx.state.tracker.track('Checkout Started');
        throw new Error('payment provider down');
      });
      router.post('/forbidden', (ctx) => {
        ctx.state.tracker.track('Forbidden');
        ctx.throw(403, 'nope', { headers: { 'x-reason': 'policy' } });
      });
    };

    it('still sets the device cookie Koa’s error handler would have cleared, matching the tracked event', async () => {
      const { server, sink } = start({ options: { cookie: { secret: SECRET } }, routes: throwing });
      const agent = request.agent(server);
      const response = await agent.post('/checkout').expect(500);
      const cookie = deviceCookie(response);
      expect(cookie).toBeDefined();
      const deviceId = sink.events[0]!.properties.$device_id as string;
      expect(cookie).toContain(deviceId);
      // The browser keeps that cookie: the next request is the same device.
      await agent.get('/track/retry').expect(204);
      expect(sink.events[1]!.properties.$device_id).toBe(deviceId);
    });

    it('keeps the error’s own headers (ctx.throw with headers) next to the cookie', async () => {
      const { server, sink } = start({ keys: ['k1'], routes: throwing });
      const response = await request(server).post('/forbidden').expect(403);
      expect(response.headers['x-reason']).toBe('policy');
      expect(deviceCookie(response)).toContain(sink.events[0]!.properties.$device_id);
      expect(setCookieNames(response)).toEqual(
        expect.arrayContaining(['idstitch_device', 'idstitch_device.sig']),
      );
    });

    it('writes one cookie per name when the app’s own error handler catches the error', async () => {
      const handler: Koa.Middleware = async (ctx, next) => {
        try {
          await next();
        } catch {
          ctx.status = 500;
          ctx.body = { error: 'sorry' };
        }
      };
      const { server, sink } = start({ before: [handler], routes: throwing });
      const response = await request(server).post('/checkout').expect(500);
      expect(response.body).toEqual({ error: 'sorry' });
      expect(setCookieNames(response).filter((name) => name === 'idstitch_device')).toHaveLength(1);
      expect(deviceCookie(response)).toContain(sink.events[0]!.properties.$device_id);
    });
  });

  describe('app.keys', () => {
    it('signs the device cookie with Koa’s keygrip when the app has keys, on top of the core’s HMAC', async () => {
      const { server } = start({ keys: ['current-key'], options: { cookie: { secret: SECRET } } });
      const response = await request(server).get('/track/x').expect(204);
      const lines = response.headers['set-cookie'] as unknown as string[];
      const value = deviceCookie(response)!;
      expect(value.split('.')).toHaveLength(4); // 1.<device>.<tag>.<core HMAC>
      const sig = lines.find((line) => line.startsWith('idstitch_device.sig='));
      expect(sig).toContain(`idstitch_device.sig=${keygripSign('current-key', `idstitch_device=${value}`)};`);
      expect(lines.find((line) => line.startsWith('idstitch_device='))).toMatch(
        /; path=\/; expires=.*; samesite=lax; httponly/,
      );
    });

    it('sets no .sig cookie when the app has no keys', async () => {
      const { server } = start();
      const response = await request(server).get('/track/x').expect(204);
      expect(setCookieNames(response)).toEqual(['idstitch_device']);
    });

    it('treats a device cookie whose .sig does not verify as absent and issues a new device', async () => {
      const { server, sink } = start({ keys: ['current-key'] });
      const first = await request(server).get('/track/one').expect(204);
      const value = deviceCookie(first)!;
      await request(server)
        .get('/track/two')
        .set('Cookie', `idstitch_device=${value}; idstitch_device.sig=${keygripSign('wrong-key', value)}`)
        .expect(204);
      await request(server).get('/track/three').set('Cookie', `idstitch_device=${value}`).expect(204);
      const devices = sink.events.map((event) => event.properties.$device_id);
      expect(new Set(devices).size).toBe(3);
    });

    it('accepts a cookie signed with a retired key and re-signs it with the current one', async () => {
      // Only Koa's keygrip signs here, so that its rotation is what the test sees.
      const { server, sink } = start({
        keys: ['new-key', 'old-key'],
        options: { cookie: { insecureUnsigned: true } },
      });
      const value = `1.${'6c2b6a4e-4f5e-4b8a-9c1d-2e3f4a5b6c7d'}.`;
      const response = await request(server)
        .get('/track/x')
        .set(
          'Cookie',
          `idstitch_device=${value}; idstitch_device.sig=${keygripSign('old-key', `idstitch_device=${value}`)}`,
        )
        .expect(204);
      expect(sink.events[0]!.properties.$device_id).toBe('6c2b6a4e-4f5e-4b8a-9c1d-2e3f4a5b6c7d');
      const lines = response.headers['set-cookie'] as unknown as string[];
      // Rewritten with its full lifetime, not left to Koa's session-length re-signing.
      expect(lines.find((line) => line.startsWith('idstitch_device='))).toMatch(/expires=/);
      expect(lines).toContain(
        `idstitch_device.sig=${keygripSign('new-key', `idstitch_device=${value}`)}; path=/; expires=${
          /expires=([^;]+)/.exec(lines.find((line) => line.startsWith('idstitch_device='))!)![1]
        }; samesite=lax; httponly`,
      );
    });

    it('signs and verifies the __Host- device cookie on HTTPS behind a trusted proxy', async () => {
      const { app, server, sink } = start({ keys: ['k1'], options: { cookie: { secret: SECRET } } });
      app.proxy = true;
      const first = await request(server).get('/track/a').set('X-Forwarded-Proto', 'https').expect(204);
      const lines = first.headers['set-cookie'] as unknown as string[];
      expect(lines.map((line) => line.slice(0, line.indexOf('=')))).toEqual([
        '__Host-idstitch_device',
        '__Host-idstitch_device.sig',
      ]);
      for (const line of lines) expect(line).toMatch(/; path=\/; .*secure/);
      const cookie = lines.map((line) => line.slice(0, line.indexOf(';'))).join('; ');
      const second = await request(server)
        .get('/track/b')
        .set('X-Forwarded-Proto', 'https')
        .set('Cookie', cookie)
        .expect(204);
      expect(second.headers['set-cookie']).toBeUndefined();
      expect(sink.events[1]!.properties.$device_id).toBe(sink.events[0]!.properties.$device_id);
    });

    it('leaves the mixpanel-browser cookie unsigned: the browser SDK rewrites it', async () => {
      const { server } = start({
        keys: ['k1'],
        options: { mixpanelBrowserCookie: { token: 'tok123', write: true } },
      });
      const response = await request(server).get('/track/x').expect(204);
      const names = setCookieNames(response);
      expect(names).toContain('mp_tok123_mixpanel');
      expect(names).not.toContain('mp_tok123_mixpanel.sig');
      const line = (response.headers['set-cookie'] as unknown as string[]).find((l) =>
        l.startsWith('mp_tok123_mixpanel='),
      )!;
      expect(line).not.toMatch(/httponly/);
      const state = JSON.parse(decodeURIComponent(line.slice('mp_tok123_mixpanel='.length).split(';')[0]!));
      expect(state.$device_id).toBeDefined();
    });
  });

  it('resolves the client IP (X-Forwarded-For behind app.proxy) only when geolocate needs it', async () => {
    for (const geolocate of [false, true]) {
      const { app, sink, server } = start({ options: { cookie: { secret: SECRET }, geolocate } });
      app.proxy = true;
      let ipHeaderReads = 0;
      // Koa reads app.proxyIpHeader each time it computes ctx.ip (and memoises it per request).
      Object.defineProperty(app, 'proxyIpHeader', {
        get() {
          ipHeaderReads++;
          return 'X-Forwarded-For';
        },
      });
      await request(server).get('/track/Home').set('X-Forwarded-For', '203.0.113.50').expect(204);
      expect({ geolocate, read: ipHeaderReads > 0, ip: sink.events[0]!.properties.ip }).toEqual({
        geolocate,
        read: geolocate,
        ip: geolocate ? '203.0.113.50' : undefined,
      });
    }
  });

  it('reports instead of throwing when Koa refuses a Secure cookie over plain HTTP', async () => {
    const { server, errors, sink } = start({ options: { cookie: { secure: true } } });
    await request(server).get('/track/x').expect(204);
    expect(sink.events).toHaveLength(1);
    expect(errors.map((error) => error.code)).toEqual(['cookie_write_failed']);
  });

  it('exposes the engine for flushing and background trackers', async () => {
    const { engine, sink } = start();
    engine.forUser('U9').track('Nightly Digest Sent');
    await engine.flush();
    expect(sink.events[0]!.properties.distinct_id).toBe('U9');
  });
});
