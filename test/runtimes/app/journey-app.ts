import { MixpanelSink } from '@idstitch/core/web';
import {
  type IdstitchHonoOptions,
  type IdstitchMiddleware,
  type IdstitchVariables,
  idstitch,
} from '@idstitch/hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';

/** What the journey app reads from its environment (variables, or a Worker's bindings). */
export interface JourneyEnv {
  MIXPANEL_TOKEN?: string;
  MIXPANEL_HOST?: string;
}

type Variables = IdstitchVariables & { user: { id: string } | undefined };

/**
 * The journey harness's routes (test/harness/types.ts) under one prefix per configuration the journey table needs,
 * so one process per runtime serves them all: `/simplified`, `/simplified-keep` (`resetOnLogout: false`),
 * `/original`, and `/geolocate` (`geolocate: true`, the runtime's client address). As in the Node harness, the
 * signed-in user is a `user` cookie that an auth middleware puts on `c.set('user', ...)`. Events go to Mixpanel's
 * API at `MIXPANEL_HOST` (the fake), one request at a time and only on `POST /flush` or a Worker's `waitUntil`, so
 * they arrive in the order they were tracked.
 */
export function createJourneyApp(env: JourneyEnv): Hono<{ Variables: Variables }> {
  const sink = new MixpanelSink({
    token: env.MIXPANEL_TOKEN ?? 'fake-token',
    host: env.MIXPANEL_HOST ?? 'http://127.0.0.1:9',
    concurrency: 1,
    flushIntervalMs: 60_000,
  });
  const secret = 'a-test-secret-of-32-characters!!';
  const configurations: Record<string, IdstitchHonoOptions> = {
    simplified: { idMerge: 'simplified' },
    'simplified-keep': { idMerge: 'simplified', resetOnLogout: false },
    original: { idMerge: 'original' },
    geolocate: { geolocate: true },
  };
  const app = new Hono<{ Variables: Variables }>();
  const middlewares: IdstitchMiddleware[] = [];
  for (const [prefix, options] of Object.entries(configurations)) {
    const routes = new Hono<{ Variables: Variables }>();
    routes.use(async function auth(c, next) {
      const user = getCookie(c, 'user');
      c.set('user', user ? { id: user } : undefined);
      await next();
    });
    const middleware = idstitch({ sink, cookie: { secret }, ...options });
    middlewares.push(middleware);
    routes.use(middleware);
    routes.get('/track/:event', (c) => {
      c.get('tracker').track(c.req.param('event'));
      return c.body(null, 204);
    });
    routes.post('/login/:user', (c) => {
      setCookie(c, 'user', c.req.param('user'), { path: '/' });
      c.set('user', { id: c.req.param('user') });
      return c.body(null, 204);
    });
    routes.post('/logout', (c) => {
      deleteCookie(c, 'user', { path: '/' });
      c.set('user', undefined);
      return c.body(null, 204);
    });
    routes.post('/reset', (c) => {
      c.get('tracker').reset();
      return c.body(null, 204);
    });
    routes.get('/whoami', (c) => c.json(c.get('tracker').identity));
    app.route(`/${prefix}`, routes);
  }
  app.post('/flush', async (c) => {
    await Promise.all(middlewares.map((middleware) => middleware.idstitch.flush()));
    return c.body(null, 204);
  });
  return app;
}
