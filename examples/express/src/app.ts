import type { Idstitch, IdstitchOptions } from '@idstitch/core';
import { idstitch } from '@idstitch/express';
import express, { type Express, type Request } from 'express';
import session from 'express-session';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

export interface ExampleAppOptions {
  /** idstitch options; the example supplies the cookie secret when none is given. */
  idstitch?: IdstitchOptions<Request>;
  /** Secret for express-session and the device cookie. */
  secret?: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A shop in a few routes: browse anonymously, sign up or log in, buy, log out. idstitch stitches the
 * anonymous browsing to the user on login and resets the device on logout, with no identity code here.
 */
export function createApp(options: ExampleAppOptions = {}): { app: Express; engine: Idstitch<Request> } {
  const secret = options.secret ?? 'example-secret-change-me-in-production';
  const tracking = idstitch({ cookie: { secret }, ...options.idstitch });
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(express.json());
  app.use(session({ secret, resave: false, saveUninitialized: false, name: 'shop.sid' }));
  app.use(tracking);

  app.get('/', (req, res) => {
    req.tracker.track('Page Viewed', { page: 'home' });
    const { deviceId, userId, distinctId } = req.tracker.identity;
    res.type('html').send(`<!doctype html><title>idstitch shop</title>
<h1>idstitch example shop</h1>
<p>device <code>${escapeHtml(deviceId ?? '-')}</code> · user <code>${escapeHtml(userId ?? 'anonymous')}</code> · distinct_id <code>${escapeHtml(distinctId ?? '-')}</code></p>
${userId ? '<form method="post" action="/logout"><button>Log out</button></form>' : '<form method="post" action="/login"><input name="userId" placeholder="user id" required><button>Log in</button></form>'}
<form method="post" action="/purchase"><input name="amount" value="19.99"><button>Buy</button></form>`);
  });

  app.get('/pricing', (req, res) => {
    req.tracker.track('Page Viewed', { page: 'pricing' });
    res.json(req.tracker.identity);
  });

  app.post('/signup', (req, res) => {
    // A new person on this device: forget the previous visitor's device before linking (Original ID Merge advice).
    req.tracker.reset();
    req.session.userId = String(req.body?.userId ?? '');
    req.tracker.people.setOnce({ signed_up_at: new Date().toISOString() });
    res.redirect(303, '/');
  });

  app.post('/login', (req, res) => {
    req.session.userId = String(req.body?.userId ?? '');
    res.redirect(303, '/');
  });

  app.post('/logout', (req, res) => {
    delete req.session.userId;
    res.redirect(303, '/');
  });

  app.post('/purchase', (req, res) => {
    const amount = Number(req.body?.amount ?? 0);
    req.tracker.track('Purchase', { amount });
    req.tracker.people.increment('purchases');
    res.redirect(303, '/');
  });

  app.get('/identity', (req, res) => {
    res.json(req.tracker.identity);
  });

  return { app, engine: tracking.idstitch };
}
