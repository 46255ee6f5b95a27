import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { IdstitchOptionsError, MemorySink, type OutgoingMessage, type Sink } from '@idstitch/core';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defaultResolveUserId,
  getTracker,
  type IdstitchFastifyOptions,
  idstitch,
  tryGetTracker,
} from '../src/index.js';

const SECRET = 'fastify-test-secret-0123456';
const NAME = 'idstitch_device';

let open: FastifyInstance | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

async function start(
  configure: (app: FastifyInstance) => void | Promise<void>,
  options: IdstitchFastifyOptions = {},
  fastifyOptions: FastifyServerOptions = {},
) {
  const sink = new MemorySink();
  const app = Fastify(fastifyOptions);
  open = app;
  await app.register(idstitch, { sink, cookie: { secret: SECRET }, ...options });
  await configure(app);
  await app.ready();
  return { app, sink, server: app.server };
}

function setCookies(response: request.Response): string[] {
  return (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
}

const names = (response: request.Response) =>
  setCookies(response)
    .map((line) => line.slice(0, line.indexOf('=')))
    .sort();

describe('@idstitch/fastify', () => {
  it('validates options at registration, naming the option', async () => {
    const app = Fastify();
    open = app;
    await expect(
      app.register(idstitch, { cookie: { maxAge: 365 * 24 * 3600 * 1000 } }).ready(),
    ).rejects.toThrow(IdstitchOptionsError);
  });

  it('puts the tracker on request.tracker and behind getTracker()/tryGetTracker()', async () => {
    const { server, sink } = await start((app) => {
      app.get('/', async (request) => {
        getTracker(request).track('Home');
        return { same: tryGetTracker(request) === request.tracker };
      });
    });
    const response = await request(server).get('/').expect(200);
    expect(response.body).toEqual({ same: true });
    expect(sink.events.map((event) => event.event)).toEqual(['Home']);
    expect(setCookies(response)[0]).toContain(sink.events[0]!.properties.$device_id);
  });

  it('leaves routes with config: { idstitch: false } untracked: no tracker, no cookie', async () => {
    const { server } = await start((app) => {
      app.get('/health', { config: { idstitch: false } }, async (request) => {
        let message = 'no error';
        try {
          getTracker(request);
        } catch (error) {
          message = (error as Error).message;
        }
        return { missing: tryGetTracker(request) === undefined, message };
      });
    });
    const response = await request(server).get('/health').expect(200);
    expect(response.body).toEqual({ missing: true, message: expect.stringMatching(/idstitch: false/) });
    expect(setCookies(response)).toEqual([]);
  });

  it('getTracker() explains the missing plugin; tryGetTracker() returns undefined', async () => {
    const app = Fastify();
    open = app;
    app.get('/', async (request) => {
      try {
        getTracker(request);
        return { message: 'no error' };
      } catch (error) {
        return { missing: tryGetTracker(request) === undefined, message: (error as Error).message };
      }
    });
    await app.ready();
    const { body } = await request(app.server).get('/');
    expect(body).toEqual({ missing: true, message: expect.stringMatching(/app\.register\(idstitch/) });
  });

  it.each([
    ['after', false],
    ['before', true],
  ])("keeps @fastify/cookie's and the app's own Set-Cookie when registered %s it", async (_order, first) => {
    const sink = new MemorySink();
    const app = Fastify();
    open = app;
    if (first) await app.register(idstitch, { sink, cookie: { secret: SECRET } });
    await app.register(fastifyCookie);
    if (!first) await app.register(idstitch, { sink, cookie: { secret: SECRET } });
    app.get('/', async (_request, reply) => {
      reply.setCookie('theme', 'dark');
      reply.header('set-cookie', 'lang=en; Path=/');
      reply.raw.setHeader('x-raw', '1');
      return 'ok';
    });
    await app.ready();
    const response = await request(app.server).get('/').expect(200);
    expect(names(response)).toEqual([NAME, 'lang', 'theme']);
  });

  it('replaces a device cookie the app itself set, so the response carries one per name', async () => {
    const { server, sink } = await start((app) => {
      app.get('/', async (request, reply) => {
        reply.header('set-cookie', `${NAME}=stale; Path=/`);
        request.tracker.track('Home');
        return 'ok';
      });
    });
    const response = await request(server).get('/').expect(200);
    expect(names(response)).toEqual([NAME]);
    expect(setCookies(response)[0]).toContain(sink.events[0]!.properties.$device_id);
  });

  it('sees a login and a logout inside the handler (@fastify/session), in the same request', async () => {
    const { server, sink } = await start(async (app) => {
      await app.register(fastifyCookie);
      await app.register(fastifySession, {
        secret: 'a-fastify-session-secret-of-32-chars!',
        cookie: { secure: false },
      });
      app.post('/login-and-out', async (request) => {
        request.tracker.track('anonymous');
        (request.session as unknown as { userId?: string }).userId = 'u-session';
        request.tracker.track('signed in');
        (request.session as unknown as { userId?: string }).userId = undefined;
        request.tracker.track('signed out');
        return 'ok';
      });
    });
    const response = await request(server).post('/login-and-out').expect(200);
    expect(sink.events.map((event) => [event.event, event.properties.$user_id ?? null])).toEqual([
      ['anonymous', null],
      ['Identified', 'u-session'],
      ['signed in', 'u-session'],
      ['signed out', null],
    ]);
    const devices = sink.events.map((event) => event.properties.$device_id);
    expect(devices[3]).not.toBe(devices[2]);
    // The cookie written in onSend carries the device after the logout, not the one the request came with.
    const device = setCookies(response).find((line) => line.startsWith(`${NAME}=`));
    expect(device).toContain(devices[3]);
  });

  it('reads the user from request.user (passport id, JWT sub) set by a hook', async () => {
    const { server, sink } = await start((app) => {
      app.addHook('preHandler', async (request) => {
        const header = request.headers['x-user'];
        if (header === 'passport')
          (request as FastifyRequest & { user: unknown }).user = { id: 'u-passport' };
        if (header === 'jwt') (request as FastifyRequest & { user: unknown }).user = { sub: 'u-jwt' };
      });
      app.get('/', async (request) => {
        request.tracker.track('Home');
        return 'ok';
      });
    });
    await request(server).get('/').set('x-user', 'passport').expect(200);
    await request(server).get('/').set('x-user', 'jwt').expect(200);
    expect(sink.events.filter((e) => e.event === 'Home').map((event) => event.properties.$user_id)).toEqual([
      'u-passport',
      'u-jwt',
    ]);
  });

  it('resolves session.get("userId") (@fastify/secure-session) and session.userId', () => {
    const asRequest = (value: object) => value as unknown as FastifyRequest;
    expect(defaultResolveUserId(asRequest({ session: { get: (key: string) => `get:${key}` } }))).toBe(
      'get:userId',
    );
    expect(defaultResolveUserId(asRequest({ session: { userId: 7 } }))).toBe(7);
    expect(defaultResolveUserId(asRequest({ user: null, session: null }))).toBeUndefined();
  });

  it('settles the cookie on an error reply too', async () => {
    const { server, sink } = await start((app) => {
      app.get('/boom', async (request) => {
        request.tracker.track('before failure');
        throw new Error('handler failed');
      });
    });
    const response = await request(server).get('/boom').expect(500);
    expect(setCookies(response)[0]).toContain(sink.events[0]!.properties.$device_id);
  });

  it('marks the cookie Secure and takes the client IP when Fastify trusts the proxy', async () => {
    const { server, sink } = await start(
      (app) => {
        app.get('/', async (request) => {
          request.tracker.track('Home');
          return 'ok';
        });
      },
      { geolocate: true },
      { trustProxy: true },
    );
    const response = await request(server)
      .get('/')
      .set('X-Forwarded-Proto', 'https')
      .set('X-Forwarded-For', '203.0.113.50');
    expect(setCookies(response)[0]).toMatch(/; Secure/);
    expect(sink.events[0]!.properties.ip).toBe('203.0.113.50');
  });

  it('resolves the client IP (X-Forwarded-For through trustProxy) only when geolocate needs it', async () => {
    for (const geolocate of [false, true]) {
      let trustChecks = 0;
      const { server, sink } = await start(
        (app) => {
          app.get('/', async (request) => {
            request.tracker.track('Home');
            return 'ok';
          });
        },
        { geolocate },
        // Fastify asks trustProxy for every hop each time it computes request.ip.
        {
          trustProxy: () => {
            trustChecks++;
            return true;
          },
        },
      );
      await request(server).get('/').set('X-Forwarded-For', '203.0.113.50').expect(200);
      expect({ geolocate, trustChecks: trustChecks > 0, ip: sink.events[0]!.properties.ip }).toEqual({
        geolocate,
        trustChecks: geolocate,
        ip: geolocate ? '203.0.113.50' : undefined,
      });
      await open?.close();
      open = undefined;
    }
  });

  it('still answers when the sink throws, reporting the drop', async () => {
    const codes: string[] = [];
    const broken: Sink = {
      write(_message: OutgoingMessage) {
        throw new Error('sink exploded');
      },
      flush: async () => {},
      close: async () => {},
    };
    const { server } = await start(
      (app) => {
        app.get('/', async (request) => {
          request.tracker.track('Home');
          return 'ok';
        });
      },
      { sink: broken, onError: (error) => codes.push(error.code) },
    );
    await request(server).get('/').expect(200);
    expect(codes).toContain('delivery_failed');
  });

  it('exposes the engine as app.idstitch and closes the sink when the app closes', async () => {
    let closed = 0;
    const sink = new MemorySink();
    const closing: Sink = {
      write: (message) => sink.write(message),
      flush: () => sink.flush(),
      close: async () => {
        closed++;
      },
    };
    const app = Fastify();
    await app.register(idstitch, { sink: closing });
    await app.ready();
    app.idstitch.forUser('u9').track('Nightly Report');
    await app.idstitch.flush();
    expect(sink.events[0]!.properties.distinct_id).toBe('u9');
    await app.close();
    expect(closed).toBe(1);
  });
});
