import type { Server } from 'node:http';
import { MixpanelSink, type Sink } from '@idstitch/core';
import { Analytics } from '@segment/analytics-node';
import Mixpanel from 'mixpanel';
import { PostHog } from 'posthog-node';
import { v4 as uuidv4 } from 'uuid';
import { API_SECRET, COOKIE_SECRET, TOKEN } from '../lib/fixtures.js';

/** What an app of the overhead scenario gives the server harness. */
export interface App {
  server: Server;
  /** Delivers what is left and reports the SDK's own counters. */
  close(): Promise<Record<string, unknown>>;
  /** Resolves once everything tracked so far has been delivered (the SDK stays open). */
  flush(): Promise<void>;
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

/**
 * Set by the instruction scenario (`BENCH_INSTRUCTIONS=1`): under callgrind a process runs about 50× slower, so a
 * timed flush (every 2 s, 10 s) would fire every few dozen requests and the count per request would depend on how
 * fast the machine was that minute. Batches are then cut by count, and by the flush at the end of each phase.
 */
const untimed = process.env.BENCH_INSTRUCTIONS === '1';
const HOUR_MS = 3_600_000;

export function idstitchSink(ingestPort: number): MixpanelSink {
  return new MixpanelSink({
    token: TOKEN,
    apiSecret: API_SECRET,
    host: `${scheme}://127.0.0.1:${ingestPort}/`,
    ...(untimed ? { flushIntervalMs: HOUR_MS } : {}),
    onError: (error) => process.stderr.write(`MixpanelSink: ${error.message}\n`),
    // Memory only, said explicitly: without it a production process reports once how to turn the spool on.
    spool: false,
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
    async flush(): Promise<void> {
      if (outstanding > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
  };
}

/** The identity recipe of the hand-written variants: a device-ID cookie through cookie-parser, a UUID when missing. */
export function deviceIdCookie(
  req: { cookies?: Record<string, unknown> },
  res: { cookie(name: string, value: string, options: Record<string, unknown>): unknown },
): string {
  let deviceId = req.cookies?.device_id as string | undefined;
  if (!deviceId) {
    deviceId = uuidv4();
    res.cookie('device_id', deviceId, { maxAge: 365 * 24 * 3600 * 1000, httpOnly: true, sameSite: 'lax' });
  }
  return deviceId;
}

/** posthog-node as a server app would use it: `capture()` per request, batched by the SDK, to the ingest server. */
export function posthogClient(ingestPort: number) {
  const client = new PostHog(TOKEN, {
    host: `${scheme}://127.0.0.1:${ingestPort}`,
    flushAt: 100,
    ...(untimed ? { flushInterval: HOUR_MS } : {}),
  });
  let failed = 0;
  client.on('error', () => {
    failed += 1;
  });
  return {
    track(distinctId: string, event: string, properties: Record<string, unknown>): void {
      client.capture({ distinctId, event, properties });
    },
    flush: () => client.flush(),
    async close(): Promise<Record<string, unknown>> {
      await client.shutdown(30_000);
      return { failed };
    },
  };
}

/** @segment/analytics-node with its defaults: `track()` per request, batched by the SDK. */
export function segmentClient(ingestPort: number) {
  const client = new Analytics({
    writeKey: TOKEN,
    host: `${scheme}://127.0.0.1:${ingestPort}`,
    path: '/v1/batch',
    ...(untimed ? { flushInterval: HOUR_MS } : {}),
  });
  let failed = 0;
  client.on('error', () => {
    failed += 1;
  });
  return {
    track(
      userId: string | undefined,
      anonymousId: string,
      event: string,
      properties: Record<string, unknown>,
    ): void {
      client.track(userId ? { userId, anonymousId, event, properties } : { anonymousId, event, properties });
    },
    flush: () => client.flush({ timeout: 30_000 }),
    async close(): Promise<Record<string, unknown>> {
      await client.closeAndFlush({ timeout: 30_000 });
      return { failed };
    },
  };
}
