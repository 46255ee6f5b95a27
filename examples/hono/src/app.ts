import type { Sink } from '@idstitch/core/web';
import { type IdstitchHonoOptions, type IdstitchVariables, idstitch } from '@idstitch/hono';
import { type Context, Hono } from 'hono';
import { deleteCookie, getSignedCookie, setSignedCookie } from 'hono/cookie';

export interface ExampleAppOptions {
  /** idstitch options; `secret` becomes `cookie.secret` when given. */
  idstitch?: IdstitchHonoOptions;
  /**
   * Secret for the device cookie; the session cookie's key derives from it. Without one, idstitch signs with a
   * per-process key in development and refuses to start in production (where a Worker counts as production).
   */
  secret?: string;
}

/** The example's app, with the idstitch engine behind it (to flush on shutdown). */
export interface ExampleApp {
  app: Hono<{ Variables: IdstitchVariables & { user: { id: string } | undefined } }>;
  /** Delivers what is queued; the servers call it on SIGTERM, the Worker after every response. */
  flush(): Promise<void>;
  /** Flushes and closes the sink. */
  close(): Promise<void>;
  sink: Sink;
}

const SESSION = 'shop.user';
/** Signs sessions when no secret is given: sign-ins last as long as the process (or the Worker's isolate). */
let fallbackSessionKey: string | undefined;
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Reads a form field from an urlencoded or multipart body; absent when the body has none. */
async function field(c: Context, name: string): Promise<string | undefined> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * A shop in a few routes: browse anonymously, sign up or log in, buy, log out. Hono has no session middleware, so
 * the signed-in user lives in a signed cookie (`hono/cookie`, Web Crypto: the same on every runtime), and a small
 * auth middleware puts it on `c.set('user', { id })`, where idstitch's default resolver reads it. idstitch
 * stitches the anonymous browsing to the user on login and resets the device on logout, with no identity code here.
 */
export function createApp(options: ExampleAppOptions = {}): ExampleApp {
  const { secret } = options;
  // Made on first use: Workers allow no random values at start-up, outside a request.
  fallbackSessionKey ??= secret ? undefined : crypto.randomUUID();
  const sessionKey = secret ? `${secret}:hono-session` : (fallbackSessionKey as string);
  const app: ExampleApp['app'] = new Hono();

  // Load balancers' health checks are not visitors: registered before idstitch, so no tracker and no cookie.
  app.get('/healthz', (c) => c.json({ ok: true }));

  app.use(async function auth(c, next) {
    const user = await getSignedCookie(c, sessionKey, SESSION);
    c.set('user', user ? { id: user } : undefined);
    await next();
  });
  const middleware = idstitch({ ...(secret ? { cookie: { secret } } : {}), ...options.idstitch });
  app.use(middleware);

  const signIn = async (c: Context, userId: string) => {
    await setSignedCookie(c, SESSION, userId, sessionKey, {
      path: '/',
      httpOnly: true,
      sameSite: 'Lax',
      secure: new URL(c.req.url).protocol === 'https:',
    });
    // The handler's own change of user: idstitch re-reads the resolver on every call.
    c.set('user', { id: userId });
  };

  app.get('/', (c) => {
    const tracker = c.get('tracker');
    tracker.track('Page Viewed', { page: 'home' });
    const { deviceId, userId, distinctId } = tracker.identity;
    return c.html(`<!doctype html><title>idstitch shop</title>
<h1>idstitch example shop (Hono)</h1>
<p>device <code>${escapeHtml(deviceId ?? '-')}</code> · user <code>${escapeHtml(userId ?? 'anonymous')}</code> · distinct_id <code>${escapeHtml(distinctId ?? '-')}</code></p>
${userId ? '<form method="post" action="/logout"><button>Log out</button></form>' : '<form method="post" action="/login"><input name="userId" placeholder="user id" required><button>Log in</button></form>'}
<form method="post" action="/purchase"><input name="amount" value="19.99"><button>Buy</button></form>`);
  });

  app.get('/pricing', (c) => {
    c.get('tracker').track('Page Viewed', { page: 'pricing' });
    return c.json(c.get('tracker').identity);
  });

  app.post('/signup', async (c) => {
    // A new person on this device: forget the previous visitor's device before linking (Original ID Merge advice).
    c.get('tracker').reset();
    await signIn(c, (await field(c, 'userId')) ?? '');
    c.get('tracker').people.setOnce({ signed_up_at: new Date().toISOString() });
    return c.redirect('/', 303);
  });

  app.post('/login', async (c) => {
    await signIn(c, (await field(c, 'userId')) ?? '');
    return c.redirect('/', 303);
  });

  app.post('/logout', (c) => {
    deleteCookie(c, SESSION, { path: '/' });
    c.set('user', undefined);
    return c.redirect('/', 303);
  });

  app.post('/purchase', async (c) => {
    c.get('tracker').track('Purchase', { amount: Number((await field(c, 'amount')) || 0) });
    c.get('tracker').people.increment('purchases');
    return c.redirect('/', 303);
  });

  app.get('/identity', (c) => c.json(c.get('tracker').identity));

  const engine = middleware.idstitch;
  return {
    app,
    sink: engine.options.sink,
    flush: () => engine.flush(),
    close: () => engine.close(),
  };
}
