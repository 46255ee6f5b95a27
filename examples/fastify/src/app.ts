import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifySession from '@fastify/session';
import { type IdstitchFastifyOptions, idstitch } from '@idstitch/fastify';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

declare module 'fastify' {
  interface Session {
    userId?: string;
  }
}

export interface ExampleAppOptions {
  /** idstitch options; the example supplies the cookie secret when none is given. */
  idstitch?: IdstitchFastifyOptions;
  /** Secret for the device cookie; the session's secret derives from it. */
  secret?: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const seeOther = (reply: FastifyReply) => reply.redirect('/', 303);

/**
 * A shop in a few routes: browse anonymously, sign up or log in, buy, log out. idstitch stitches the
 * anonymous browsing to the user on login and resets the device on logout, with no identity code here.
 */
export async function createApp(options: ExampleAppOptions = {}): Promise<FastifyInstance> {
  const secret = options.secret ?? 'example-secret-change-me-in-production';
  const app = Fastify();
  await app.register(fastifyFormbody);
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: `${secret}:fastify-session`.padEnd(32, '.'),
    cookieName: 'shop.sess',
    cookie: { secure: 'auto' },
    saveUninitialized: false,
  });
  await app.register(idstitch, { cookie: { secret }, ...options.idstitch });

  app.get('/', async (request, reply) => {
    request.tracker.track('Page Viewed', { page: 'home' });
    const { deviceId, userId, distinctId } = request.tracker.identity;
    return reply.type('text/html').send(`<!doctype html><title>idstitch shop</title>
<h1>idstitch example shop (Fastify)</h1>
<p>device <code>${escapeHtml(deviceId ?? '-')}</code> · user <code>${escapeHtml(userId ?? 'anonymous')}</code> · distinct_id <code>${escapeHtml(distinctId ?? '-')}</code></p>
${userId ? '<form method="post" action="/logout"><button>Log out</button></form>' : '<form method="post" action="/login"><input name="userId" placeholder="user id" required><button>Log in</button></form>'}
<form method="post" action="/purchase"><input name="amount" value="19.99"><button>Buy</button></form>`);
  });

  app.get('/pricing', async (request) => {
    request.tracker.track('Page Viewed', { page: 'pricing' });
    return request.tracker.identity;
  });

  app.post<{ Body: { userId?: string } }>('/signup', async (request, reply) => {
    // A new person on this device: forget the previous visitor's device before linking (Original ID Merge advice).
    request.tracker.reset();
    request.session.userId = String(request.body?.userId ?? '');
    request.tracker.people.setOnce({ signed_up_at: new Date().toISOString() });
    return seeOther(reply);
  });

  app.post<{ Body: { userId?: string } }>('/login', async (request, reply) => {
    request.session.userId = String(request.body?.userId ?? '');
    return seeOther(reply);
  });

  app.post('/logout', async (request, reply) => {
    request.session.userId = undefined;
    return seeOther(reply);
  });

  app.post<{ Body: { amount?: string } }>('/purchase', async (request, reply) => {
    request.tracker.track('Purchase', { amount: Number(request.body?.amount || 0) });
    request.tracker.people.increment('purchases');
    return seeOther(reply);
  });

  app.get('/identity', async (request) => request.tracker.identity);

  // Load balancers' health checks are not visitors: no tracker, no cookie.
  app.get('/healthz', { config: { idstitch: false } }, async () => ({ ok: true }));

  return app;
}
