import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { MemorySink } from '@idstitch/core';
import { idstitch } from '@idstitch/hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AdapterHarness, RunningApp } from './types.js';

/**
 * Hono on Node through @hono/node-server. Hono has no session middleware of its own, so the app keeps the
 * signed-in user in a `user` cookie and an auth middleware puts it on `c.set('user', ...)`, where the adapter's
 * default resolver reads it.
 */
export const honoHarness: AdapterHarness = {
  name: 'hono',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = new Hono<{ Variables: { user: { id: string } | undefined } }>();
    app.use(async (c, next) => {
      const user = getCookie(c, 'user');
      c.set('user', user ? { id: user } : undefined);
      await next();
    });
    app.use(
      idstitch({ sink, cookie: { secret: 'a-test-secret-of-32-characters!!' }, ...(options as object) }),
    );
    app.get('/track/:event', (c) => {
      c.get('tracker').track(c.req.param('event'));
      return c.body(null, 204);
    });
    app.post('/track-body/:event', async (c) => {
      c.get('tracker').track(c.req.param('event'), await c.req.json());
      return c.body(null, 204);
    });
    app.post('/login/:user', (c) => {
      setCookie(c, 'user', c.req.param('user'), { path: '/' });
      c.set('user', { id: c.req.param('user') });
      return c.body(null, 204);
    });
    app.post('/logout', (c) => {
      deleteCookie(c, 'user', { path: '/' });
      c.set('user', undefined);
      return c.body(null, 204);
    });
    app.post('/reset', (c) => {
      c.get('tracker').reset();
      return c.body(null, 204);
    });
    app.get('/whoami', (c) => c.json(c.get('tracker').identity));
    const server = createAdaptorServer({ fetch: app.fetch }) as Server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, sink, close: () => new Promise((resolve) => server.close(() => resolve())) };
  },
};
