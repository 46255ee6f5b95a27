/**
 * Shared pieces of the browser tests: headless Debian Chromium through playwright-core, a test shop on
 * 127.0.0.1 that serves the real mixpanel-browser package and runs idstitch, the fake Mixpanel both sides
 * send to, and the combined stream resolved as Mixpanel's ID Merge would.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { IdstitchOptions, MixpanelEvent, OutgoingMessage } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { idstitch } from '@idstitch/express';
import { type FakeMixpanel, type StoredEvent, startFakeMixpanel } from '@idstitch/fake-mixpanel';
// The ID-merge resolver: the one place the browser tests import it from.
import { type Resolution, resolveIdentities } from '@idstitch/inspector';
import express, { type Request } from 'express';
import { type Browser, chromium } from 'playwright-core';

export const TOKEN = 'fake-token';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.js';

const require = createRequire(import.meta.url);
const SDK = readFileSync(require.resolve('mixpanel-browser/dist/mixpanel.umd.js'), 'utf8');

/** Launches Debian's Chromium headless (never a downloaded browser); `*.example.com` resolves to 127.0.0.1. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // playwright-core gives every launch a fresh temporary --user-data-dir of its own.
    args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP *.example.com 127.0.0.1'],
  });
}

/** mixpanel-browser's init config for the pages, besides api_host and token. */
export type SdkConfig = Record<string, unknown>;

export interface ShopOptions {
  fake: FakeMixpanel;
  idstitch?: IdstitchOptions<Request>;
  sdk?: SdkConfig;
  /** Render `mixpanel.identify(user)` / `mixpanel.reset()` in pages (what localStorage persistence needs). */
  snippet?: boolean;
}

export interface Shop {
  origin: string;
  port: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

const sessions = new Map<string, string>();

function sessionUser(request: Request): string | undefined {
  const sid = /(?:^|;\s*)sid=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
  return sid === undefined ? undefined : sessions.get(sid);
}

const json = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

/**
 * A test shop: `/static` (no idstitch: the SDK alone), `/page/*` (server event + SDK page event),
 * `/login?user=` and `/logout` (session changes, then a redirect to `/page/after-*`).
 */
export async function startShop(options: ShopOptions): Promise<Shop> {
  const app = express();
  const sdkConfig = (request: Request) => ({
    api_host: options.fake.url,
    batch_flush_interval_ms: 50,
    ...options.sdk,
    ...(request.query.nobatch ? { batch_requests: false } : {}),
  });
  const page = (request: Request, server: boolean, snippet = '') => `<!doctype html><title>shop</title>
<script src="/mixpanel.js"></script>
<script>
mixpanel.init(${json(TOKEN)}, ${json(sdkConfig(request))});
${snippet}
mixpanel.track('Browser Page', { case: ${json(String(request.query.case ?? request.path))} });
window.__ready = true;
</script><p>${server ? 'server' : 'static'}</p>`;
  app.get('/mixpanel.js', (_request, response) => {
    response.set('cache-control', 'public, max-age=3600').type('js').send(SDK);
  });
  app.get('/static', (request, response) => {
    response.type('html').send(page(request, false));
  });
  const sink = new MixpanelSink({ token: TOKEN, host: options.fake.url, flushIntervalMs: 60_000 });
  const tracking = idstitch({
    sink,
    cookie: { secret: 'browser-test-secret-0123456789' },
    resolveUserId: sessionUser,
    mixpanelBrowserCookie: { token: TOKEN },
    onError: () => {},
    ...options.idstitch,
  });
  app.use(tracking);
  app.get('/login', (request, response) => {
    const sid = randomUUID();
    sessions.set(sid, String(request.query.user));
    response.cookie('sid', sid, { httpOnly: true });
    response.redirect(303, '/page/after-login');
  });
  app.get('/logout', (request, response) => {
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
    if (sid) sessions.delete(sid);
    response.clearCookie('sid');
    response.redirect(303, '/page/after-logout');
  });
  app.get('/page/*path', (request, response) => {
    request.tracker.track('Server Page', { case: String(request.query.case ?? request.path) });
    const user = request.tracker.identity.userId;
    const snippet = options.snippet ? (user ? `mixpanel.identify(${json(user)});` : '') : '';
    response.type('html').send(page(request, true, snippet));
  });
  app.get('/page-reset', (request, response) => {
    response.type('html').send(page(request, true, options.snippet ? 'mixpanel.reset();' : ''));
  });
  const server: Server = await new Promise((resolve) => {
    const started = app.listen(0, '127.0.0.1', () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    flush: () => tracking.idstitch.flush(),
    async close() {
      await tracking.idstitch.close(1000);
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Polls the fake until `predicate` holds (browser events arrive on the SDK's own schedule). */
export async function waitFor(fake: FakeMixpanel, predicate: (events: readonly StoredEvent[]) => boolean) {
  for (let i = 0; i < 500; i += 1) {
    if (predicate(fake.events)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('timed out waiting for events at the fake Mixpanel');
}

/** Events from the browser SDK (`/track`) and the server (`/import`), in time order (seconds vs ms evened). */
export function combinedStream(events: readonly StoredEvent[]): OutgoingMessage[] {
  const ms = (event: StoredEvent) => {
    const time = Number(event.properties.time);
    return time < 1e11 ? time * 1000 : time;
  };
  return [...events]
    .sort((a, b) => ms(a) - ms(b))
    .map((event) => ({
      kind: 'event' as const,
      payload: { event: event.event, properties: event.properties } as MixpanelEvent,
    }));
}

/** The combined stream resolved with Simplified ID Merge. */
export function resolveStream(events: readonly StoredEvent[]): Resolution {
  return resolveIdentities(combinedStream(events), { mode: 'simplified' });
}

export { startFakeMixpanel };
