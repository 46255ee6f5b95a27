import { createServer } from 'node:http';
import { MemorySink } from '@idstitch/core';
import { idstitch } from '@idstitch/koa';
import Router from '@koa/router';
import Koa from 'koa';
import session from 'koa-session';
import type { AdapterHarness, RunningApp } from './types.js';

/**
 * Koa 3 with koa-session: login writes `ctx.session.userId`, the adapter's default resolver reads it. The app
 * sets `app.keys`, so the device cookie is also signed with Koa's keygrip.
 */
export const koaHarness: AdapterHarness = {
  name: 'koa',
  async start(options = {}): Promise<RunningApp> {
    const sink = new MemorySink();
    const app = new Koa();
    app.keys = ['koa-test-key-one', 'koa-test-key-two'];
    app.use(session({ signed: true }, app));
    app.use(
      idstitch({ sink, cookie: { secret: 'a-test-secret-of-32-characters!!' }, ...(options as object) }),
    );
    const router = new Router();
    router.get('/track/:event', (ctx) => {
      ctx.state.tracker.track(ctx.params.event!);
      ctx.status = 204;
    });
    router.post('/track-body/:event', async (ctx) => {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      ctx.state.tracker.track(ctx.params.event!, JSON.parse(Buffer.concat(chunks).toString('utf8')));
      ctx.status = 204;
    });
    router.post('/login/:user', (ctx) => {
      ctx.session!.userId = ctx.params.user;
      ctx.status = 204;
    });
    router.post('/logout', (ctx) => {
      delete ctx.session!.userId;
      ctx.status = 204;
    });
    router.post('/reset', (ctx) => {
      ctx.state.tracker.reset();
      ctx.status = 204;
    });
    router.get('/whoami', (ctx) => {
      ctx.body = ctx.state.tracker.identity;
    });
    app.use(router.routes());
    const server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, sink, close: () => new Promise((resolve) => server.close(() => resolve())) };
  },
};
