import { IdstitchOptionsError, MemorySink } from '@idstitch/core';
import cookieSession from 'cookie-session';
import express, { type Request } from 'express';
import passport from 'passport';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { getTracker, idstitch, tryGetTracker } from '../src/index.js';

const SECRET = 'express-test-secret-012345';

function app(
  configure: (app: express.Express, sink: MemorySink) => void,
  options: Parameters<typeof idstitch>[0] = {},
) {
  const sink = new MemorySink();
  const application = express();
  configure(application, sink);
  return { application, sink, options: { sink, cookie: { secret: SECRET }, ...options } };
}

describe('@idstitch/express', () => {
  it('validates options when the middleware is created', () => {
    expect(() => idstitch({ cookie: { maxAge: 365 * 24 * 3600 * 1000 } })).toThrow(IdstitchOptionsError);
    expect(() => idstitch({ cookie: { maxAge: 365 * 24 * 3600 * 1000 } })).toThrow(
      /cookie\.maxAge.*not milliseconds/,
    );
  });

  it('never lets a request body choose identity fields: track(name, req.body) over real HTTP', async () => {
    const { application, sink, options } = app(() => {});
    application.use(express.json());
    application.use(idstitch(options));
    application.post('/search', (req, res) => {
      req.tracker.track('Searched', req.body);
      req.tracker.people.set(req.body);
      res.sendStatus(204);
    });
    const agent = request.agent(application);
    const victim = 'victim@example.com';
    await agent
      .post('/search')
      .send({ q: 'shoes', $user_id: victim, distinct_id: victim, $device_id: 'attacker-device', token: 't' })
      .expect(204);
    await agent.post('/search').send({ $anon_id: 'attacker-device', $identified_id: victim, ip: '1.2.3.4' });
    for (const event of sink.events) {
      const p = event.properties;
      expect(p.$user_id).toBeUndefined();
      expect(p.distinct_id).toBe(`$device:${p.$device_id}`);
      expect(p.$device_id).toMatch(/^[0-9a-f-]{36}$/);
      expect([p.token, p.ip, p.$anon_id, p.$identified_id]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
    }
    expect(sink.events[0]!.properties.q).toBe('shoes');
    expect(sink.profileUpdates).toEqual([]);
  });

  it('refuses to start in production without a cookie secret, unless the app opts out explicitly', () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(() => idstitch({ sink: new MemorySink() })).toThrow(IdstitchOptionsError);
      expect(() => idstitch({ sink: new MemorySink() })).toThrow(/`cookie\.secret` is required/);
      expect(() => idstitch({ sink: new MemorySink(), cookie: { insecureUnsigned: true } })).not.toThrow();
    } finally {
      process.env.NODE_ENV = previous;
    }
  });

  it('refuses a misspelt option with a suggestion', () => {
    expect(() => idstitch({ cookies: { secret: SECRET } } as never)).toThrow(
      /`cookies`.*Did you mean `cookie`\?/,
    );
  });

  it('marks the cookie Secure and takes the client IP through a trusted proxy', async () => {
    const { application, sink, options } = app(() => {}, { geolocate: true });
    application.set('trust proxy', true);
    application.use(idstitch(options));
    application.get('/', (req, res) => {
      req.tracker.track('Home');
      res.end();
    });
    const response = await request(application)
      .get('/')
      .set('X-Forwarded-Proto', 'https')
      .set('X-Forwarded-For', '203.0.113.50');
    expect(response.headers['set-cookie']?.[0]).toMatch(/; Secure/);
    expect(sink.events[0]!.properties.ip).toBe('203.0.113.50');
  });

  it('does not trust X-Forwarded-For unless Express does', async () => {
    const { application, sink, options } = app(() => {}, { geolocate: true });
    application.use(idstitch(options));
    application.get('/', (req, res) => {
      req.tracker.track('Home');
      res.end();
    });
    await request(application).get('/').set('X-Forwarded-For', '203.0.113.50');
    expect(sink.events[0]!.properties.ip).not.toBe('203.0.113.50');
  });

  it("keeps the app's own cookies alongside its device cookie", async () => {
    const { application, options } = app(() => {});
    application.use(idstitch(options));
    application.get('/', (_req, res) => {
      res.cookie('theme', 'dark');
      res.end();
    });
    const cookies = (await request(application).get('/')).headers['set-cookie'] as unknown as string[];
    expect(cookies.map((line) => line.split('=')[0]).sort()).toEqual(['idstitch_device', 'theme']);
  });

  it('sees passport req.login and req.logout inside one handler', async () => {
    const { application, sink, options } = app((application) => {
      application.use(cookieSession({ secret: 'cookie-session-secret', name: 'sess' }));
      // cookie-session lacks the regenerate/save that passport 0.7 calls on login and logout.
      application.use((req, _res, next) => {
        const session = req.session as unknown as Record<string, unknown>;
        session.regenerate ??= (done: () => void) => done();
        session.save ??= (done: () => void) => done();
        next();
      });
      passport.serializeUser((user, done) => done(null, (user as { id: string }).id));
      passport.deserializeUser<string>((id, done) => done(null, { id }));
      application.use(passport.session());
    });
    application.use(idstitch(options));
    application.post('/login-and-out', (req, res, next) => {
      req.tracker.track('anonymous');
      req.login({ id: 'u-passport' }, (error) => {
        if (error) return next(error);
        req.tracker.track('signed in');
        req.logout((logoutError) => {
          if (logoutError) return next(logoutError);
          req.tracker.track('signed out');
          res.end();
        });
      });
    });
    await request(application).post('/login-and-out').expect(200);
    expect(sink.events.map((event) => [event.event, event.properties.$user_id ?? null])).toEqual([
      ['anonymous', null],
      ['Identified', 'u-passport'],
      ['signed in', 'u-passport'],
      ['signed out', null],
    ]);
    const devices = sink.events.map((event) => event.properties.$device_id);
    expect(devices[3]).not.toBe(devices[2]);
  });

  it('settles the cookie even when the handler fails', async () => {
    const { application, sink, options } = app(() => {});
    application.use(idstitch(options));
    application.get('/boom', (req) => {
      req.tracker.track('before failure');
      throw new Error('handler failed');
    });
    application.use((_error: Error, _req: Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).end();
    });
    const response = await request(application).get('/boom').expect(500);
    expect(response.headers['set-cookie']?.[0]).toContain(sink.events[0]!.properties.$device_id);
  });

  it('getTracker throws a clear error without the middleware; tryGetTracker returns undefined', async () => {
    const application = express();
    application.get('/', (req, res) => {
      res.json({
        missing: tryGetTracker(req) === undefined,
        message: (() => {
          try {
            getTracker(req);
            return 'no error';
          } catch (error) {
            return (error as Error).message;
          }
        })(),
      });
    });
    const { body } = await request(application).get('/');
    expect(body).toEqual({
      missing: true,
      message: expect.stringMatching(/Mount `app.use\(idstitch\(options\)\)`/),
    });
  });

  it('ignores assignment to req.tracker on a tracked request: no one can swap the tracker', async () => {
    const { application, sink, options } = app(() => {});
    application.use(idstitch(options));
    const stolen: string[] = [];
    const evil = { track: (event: string) => stolen.push(event) };
    application.get('/', (req, res) => {
      const original = req.tracker;
      (req as { tracker: unknown }).tracker = evil;
      req.tracker.track('Home');
      res.json({ same: req.tracker === original && getTracker(req) === original });
    });
    const { body } = await request(application).get('/').expect(200);
    expect(body).toEqual({ same: true });
    expect(stolen).toEqual([]);
    expect(sink.events.map((event) => event.event)).toEqual(['Home']);
  });

  it('lets an untracked request keep a req.tracker of its own, and gives an earlier one way to idstitch', async () => {
    const { application, sink, options } = app(() => {});
    application.get('/untracked', (req, res) => {
      (req as { tracker: unknown }).tracker = 'mine';
      res.json({ tracker: req.tracker, tried: tryGetTracker(req) ?? null });
    });
    application.use((req, _res, next) => {
      (req as { tracker: unknown }).tracker = 'set before idstitch';
      next();
    });
    application.use(idstitch(options));
    application.get('/tracked', (req, res) => {
      req.tracker.track('Tracked');
      res.json({ same: req.tracker === getTracker(req) });
    });
    expect((await request(application).get('/untracked')).body).toEqual({ tracker: 'mine', tried: null });
    expect((await request(application).get('/tracked')).body).toEqual({ same: true });
    expect(sink.events.map((event) => event.event)).toEqual(['Tracked']);
  });

  it('ignores Object.prototype pollution: a planted `tracker` is never a request’s tracker', async () => {
    const planted: unknown = { track: () => {} };
    const prototype = Object.prototype as { tracker?: unknown };
    prototype.tracker = planted;
    try {
      const { application, sink, options } = app(() => {});
      const untracked = express.Router();
      untracked.get('/', (req, res) => {
        res.json({
          tried: tryGetTracker(req) === undefined,
          read: req.tracker === undefined,
          thrown: (() => {
            try {
              getTracker(req);
              return false;
            } catch {
              return true;
            }
          })(),
        });
      });
      application.use('/untracked', untracked);
      application.use(idstitch(options));
      application.get('/', (req, res) => {
        req.tracker.track('Home');
        res.json({ real: req.tracker !== planted && getTracker(req) !== planted });
      });
      expect((await request(application).get('/untracked')).body).toEqual({
        tried: true,
        read: true,
        thrown: true,
      });
      expect((await request(application).get('/')).body).toEqual({ real: true });
      expect(sink.events.map((event) => event.event)).toEqual(['Home']);
    } finally {
      delete prototype.tracker;
    }
  });

  it("keeps the app's Set-Cookie however it is written, without a per-request property on req or res", async () => {
    const { application, options } = app(() => {});
    application.use(idstitch(options));
    application.get('/cookie', (req, res) => {
      res.cookie('theme', 'dark');
      res.append('Set-Cookie', 'lang=fr; Path=/');
      res.json({ own: [Object.hasOwn(req, 'tracker'), Object.hasOwn(res, 'writeHead')] });
    });
    application.get('/write-head', (_req, res) => {
      res.setHeader('Set-Cookie', 'replaced=1');
      res.writeHead(201, { 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'], 'X-App': 'yes' });
      res.end();
    });
    application.get('/write-head-array', (_req, res) => {
      res.writeHead(202, 'Fine', ['Set-Cookie', 'c=3; Path=/', 'Set-Cookie', 'd=4; Path=/']);
      res.end();
    });
    const cookieNames = (response: request.Response) =>
      ((response.headers['set-cookie'] as unknown as string[]) ?? []).map((line) => line.split('=')[0]);

    const plain = await request(application).get('/cookie').expect(200);
    expect(plain.body).toEqual({ own: [false, false] });
    expect(cookieNames(plain)).toEqual(['theme', 'lang', 'idstitch_device']);
    const object = await request(application).get('/write-head').expect(201);
    expect(object.headers['x-app']).toBe('yes');
    expect(cookieNames(object)).toEqual(['a', 'b', 'idstitch_device']);
    const array = await request(application).get('/write-head-array').expect(202);
    expect(cookieNames(array)).toEqual(['c', 'd', 'idstitch_device']);
  });

  it('serves two apps in one process, a mounted sub-app and a response another middleware wrapped first', async () => {
    const first = app(() => {});
    const second = app(
      (application) => {
        // As express-session and compression do: res.writeHead wrapped per response before idstitch runs.
        application.use((_req, res, next) => {
          const writeHead = res.writeHead;
          res.writeHead = function wrapped(this: express.Response, ...args: unknown[]) {
            return (writeHead as (...args: unknown[]) => express.Response).apply(this, args);
          } as typeof res.writeHead;
          next();
        });
      },
      { cookie: { secret: SECRET, name: 'second_device' } },
    );
    const sub = express();
    sub.get('/', (req, res) => {
      req.tracker.track('Sub');
      res.end();
    });
    first.application.use(idstitch(first.options));
    first.application.use('/sub', sub);
    first.application.get('/', (req, res) => {
      req.tracker.track('First');
      res.end();
    });
    second.application.use(idstitch(second.options));
    second.application.get('/', (req, res) => {
      req.tracker.track('Second');
      res.end();
    });
    const cookie = (response: request.Response) =>
      ((response.headers['set-cookie'] as unknown as string[]) ?? []).map((line) => line.split('=')[0]);
    for (let round = 0; round < 2; round++) {
      const [a, b, c] = await Promise.all([
        request(first.application).get('/'),
        request(second.application).get('/'),
        request(first.application).get('/sub'),
      ]);
      expect([cookie(a), cookie(b), cookie(c)]).toEqual([
        ['idstitch_device'],
        ['second_device'],
        ['idstitch_device'],
      ]);
    }
    expect(first.sink.events.map((event) => event.event).sort()).toEqual(['First', 'First', 'Sub', 'Sub']);
    expect(second.sink.events.map((event) => event.event)).toEqual(['Second', 'Second']);
  });

  it('exposes the engine for flushing and background trackers', async () => {
    const sink = new MemorySink();
    const middleware = idstitch({ sink });
    middleware.idstitch.forUser('u9').track('Nightly Report');
    await middleware.idstitch.flush();
    expect(sink.events[0]!.properties.distinct_id).toBe('u9');
  });
});
