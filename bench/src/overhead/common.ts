import type { Server } from 'node:http';
import { MixpanelSink, type Sink } from '@idstitch/core';
import Mixpanel from 'mixpanel';
import { API_SECRET, COOKIE_SECRET, TOKEN } from '../lib/fixtures.js';

/** What an app of the overhead scenario gives the server harness. */
export interface App {
  server: Server;
  /** Delivers what is left and reports the SDK's own counters. */
  close(): Promise<Record<string, unknown>>;
}

export const HELLO = 'hello world';
export const PROPERTIES = { plan: 'pro', section: 'home' } as const;
export const EVENT = 'Page Viewed';

/** What the app's auth layer would have put on the request: here, a header set by the load generator. */
export function signedInUser(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['x-user-id'];
  return typeof value === 'string' ? value : undefined;
}

/** Set by the runner for the `-tls` variants: the ingest server speaks HTTPS, as Mixpanel's API does. */
const scheme = process.env.BENCH_INGEST_TLS === '1' ? 'https' : 'http';

export function idstitchSink(ingestPort: number): MixpanelSink {
  return new MixpanelSink({
    token: TOKEN,
    apiSecret: API_SECRET,
    host: `${scheme}://127.0.0.1:${ingestPort}/`,
    onError: (error) => process.stderr.write(`MixpanelSink: ${error.message}\n`),
  });
}

/** A sink that counts and discards: the cost of identity and event building without any delivery. */
export function nullSink(): Sink & { stats(): Record<string, unknown> } {
  let written = 0;
  return {
    write() {
      written += 1;
    },
    flush: async () => {},
    close: async () => {},
    stats: () => ({ written }),
  };
}

export const idstitchCookie = { secret: COOKIE_SECRET };

/**
 * The official client, as Mixpanel's server-side guide sets it up, pointed at the loopback ingest server.
 * Counts callbacks so that `close()` can wait for the requests still in flight.
 */
export function officialMixpanel(ingestPort: number) {
  const client = Mixpanel.init(TOKEN, { host: `127.0.0.1:${ingestPort}`, protocol: scheme });
  let outstanding = 0;
  let failed = 0;
  let sent = 0;
  let idle: (() => void) | undefined;
  const callback = (error: Error | undefined) => {
    outstanding -= 1;
    if (error) failed += 1;
    if (outstanding === 0) idle?.();
  };
  return {
    track(event: string, properties: Record<string, unknown>): void {
      outstanding += 1;
      sent += 1;
      client.track(event, properties, callback);
    },
    async close(): Promise<Record<string, unknown>> {
      if (outstanding > 0) await new Promise<void>((resolve) => (idle = resolve));
      return { sent, failed };
    },
  };
}
