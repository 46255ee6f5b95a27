/**
 * Express app instances as a load-balanced deployment runs them: each with its own RedisIdentityStore,
 * RedisOutbox and in-process worker, all sharing one Redis; sessions in a signed cookie so any
 * instance serves any request. And a browser: one cookie jar used against every instance.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Idstitch, IdstitchError, MixpanelSinkOptions } from '@idstitch/core';
import { idstitch } from '@idstitch/express';
import { RedisIdentityStore, RedisOutbox, type RedisOutboxOptions } from '@idstitch/redis';
import cookieSession from 'cookie-session';
import express, { type Request } from 'express';

export interface Instance {
  readonly url: string;
  readonly engine: Idstitch<Request>;
  readonly outbox: RedisOutbox;
  readonly identityStore: RedisIdentityStore;
  readonly errors: IdstitchError[];
  close(): Promise<void>;
}

export interface InstanceOptions {
  redisUrl: string;
  mixpanel: MixpanelSinkOptions;
  outbox?: Partial<RedisOutboxOptions>;
}

export async function startInstance(options: InstanceOptions): Promise<Instance> {
  const errors: IdstitchError[] = [];
  const onError = (error: IdstitchError) => errors.push(error);
  const identityStore = new RedisIdentityStore({ redis: options.redisUrl, prefix: 'shop:', onError });
  const outbox = new RedisOutbox({
    redis: options.redisUrl,
    prefix: 'shop:',
    mixpanel: options.mixpanel,
    worker: { blockMs: 100, claimIdleMs: 2000 },
    onError,
    ...options.outbox,
  });
  const app = express();
  app.use(cookieSession({ name: 'session', keys: ['a-session-key-shared-by-instances'] }));
  const middleware = idstitch({
    sink: outbox,
    identityStore,
    cookie: { secret: 'a-test-secret-of-32-characters!!' },
    onError,
  });
  app.use(middleware);
  app.get('/track/:event', (req, res) => {
    req.tracker.track(req.params.event, { page: req.query.page as string | undefined });
    res.sendStatus(204);
  });
  app.post('/traits/:plan', (req, res) => {
    req.tracker.people.set({ plan: req.params.plan, source: 'landing' });
    res.sendStatus(204);
  });
  // About 4 KB of traits, as a sign-up form might set.
  app.post('/profile', (req, res) => {
    const traits: Record<string, string> = {};
    for (let i = 0; i < 16; i += 1) traits[`field${i}`] = `${i}`.padEnd(250, '-');
    req.tracker.people.set(traits);
    res.sendStatus(204);
  });
  app.get('/whoami', (req, res) => {
    res.json(req.tracker.identity);
  });
  app.post('/login/:user', (req, res) => {
    (req.session as { userId?: string }).userId = req.params.user;
    res.sendStatus(204);
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    engine: middleware.idstitch,
    outbox,
    identityStore,
    errors,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await middleware.idstitch.close(2000);
      await identityStore.close(0);
    },
  };
}

/** One browser: a cookie jar sent to whichever instance the load balancer picks. */
export class Browser {
  readonly cookies = new Map<string, string>();

  async send(instance: Instance, method: 'GET' | 'POST', path: string): Promise<number> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(instance.url + path, { method, headers: cookie ? { cookie } : {} });
    for (const header of response.headers.getSetCookie()) {
      const [pair = ''] = header.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    await response.arrayBuffer();
    return response.status;
  }

  /** The device ID the instance sees for this browser. */
  async deviceId(instance: Instance): Promise<string> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(`${instance.url}/whoami`, { headers: { cookie } });
    return ((await response.json()) as { deviceId: string }).deviceId;
  }
}
