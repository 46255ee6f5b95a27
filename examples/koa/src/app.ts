import type { Idstitch } from '@idstitch/core';
import { type IdstitchKoaOptions, idstitch } from '@idstitch/koa';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import session from 'koa-session';

export interface ExampleAppOptions {
  /** idstitch options; the example supplies the cookie secret when none is given. */
  idstitch?: IdstitchKoaOptions;
  /** Secret for the device cookie; Koa's `app.keys` (which sign koa-session's and idstitch's cookies) derive from it. */
  secret?: string;
}

interface ShopSession {
  userId?: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const shopSession = (ctx: Context) => ctx.session as ShopSession;
const field = (ctx: Context, name: string) =>
  String((ctx.request.body as Record<string, unknown>)?.[name] ?? '');

/**
 * A shop in a few routes: browse anonymously, sign up or log in, buy, log out. idstitch stitches the
 * anonymous browsing to the user on login and resets the device on logout, with no identity code here.
 */
export function createApp(options: ExampleAppOptions = {}): { app: Koa; engine: Idstitch<Context> } {
  const secret = options.secret ?? 'example-secret-change-me-in-production';
  const tracking = idstitch({ cookie: { secret }, ...options.idstitch });
  const app = new Koa();
  app.keys = [`${secret}:koa`];
  app.use(bodyParser());
  app.use(session({ key: 'shop.sess' }, app));
  app.use(tracking);

  const router = new Router();
  router.get('/', (ctx) => {
    ctx.state.tracker.track('Page Viewed', { page: 'home' });
    const { deviceId, userId, distinctId } = ctx.state.tracker.identity;
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>idstitch shop</title>
<h1>idstitch example shop (Koa)</h1>
<p>device <code>${escapeHtml(deviceId ?? '-')}</code> · user <code>${escapeHtml(userId ?? 'anonymous')}</code> · distinct_id <code>${escapeHtml(distinctId ?? '-')}</code></p>
${userId ? '<form method="post" action="/logout"><button>Log out</button></form>' : '<form method="post" action="/login"><input name="userId" placeholder="user id" required><button>Log in</button></form>'}
<form method="post" action="/purchase"><input name="amount" value="19.99"><button>Buy</button></form>`;
  });

  router.get('/pricing', (ctx) => {
    ctx.state.tracker.track('Page Viewed', { page: 'pricing' });
    ctx.body = ctx.state.tracker.identity;
  });

  router.post('/signup', (ctx) => {
    // A new person on this device: forget the previous visitor's device before linking (Original ID Merge advice).
    ctx.state.tracker.reset();
    shopSession(ctx).userId = field(ctx, 'userId');
    ctx.state.tracker.people.setOnce({ signed_up_at: new Date().toISOString() });
    ctx.redirect('/');
    ctx.status = 303;
  });

  router.post('/login', (ctx) => {
    shopSession(ctx).userId = field(ctx, 'userId');
    ctx.redirect('/');
    ctx.status = 303;
  });

  router.post('/logout', (ctx) => {
    delete shopSession(ctx).userId;
    ctx.redirect('/');
    ctx.status = 303;
  });

  router.post('/purchase', (ctx) => {
    ctx.state.tracker.track('Purchase', { amount: Number(field(ctx, 'amount') || 0) });
    ctx.state.tracker.people.increment('purchases');
    ctx.redirect('/');
    ctx.status = 303;
  });

  router.get('/identity', (ctx) => {
    ctx.body = ctx.state.tracker.identity;
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, engine: tracking.idstitch };
}
