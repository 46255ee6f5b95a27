/**
 * One SDK delivering N events to the loopback ingest server, in a process of its own so that CPU time and
 * peak RSS belong to that SDK alone. Usage: `client.js <peer> <events> <port>`.
 *
 * Events are produced the same way for every SDK: in chunks of {@link CHUNK}, yielding to the event loop
 * (`setImmediate`) between chunks the way a server yields between requests, so that sockets and timers are
 * serviced while the burst goes on. The clock and the CPU counter start at the first event and stop when the
 * SDK reports everything acknowledged (flush, shutdown or every callback).
 */

import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTick } from 'node:timers/promises';
import { createIdstitch, MixpanelSink, type Sink } from '@idstitch/core';
import { Analytics } from '@segment/analytics-node';
import Mixpanel from 'mixpanel';
import { PostHog } from 'posthog-node';
import { installFatalHandlers, peakRss, reply } from '../lib/child.js';
import { API_SECRET, COOKIE_SECRET, EVENT_NAME, eventProperties, TOKEN, userId } from '../lib/fixtures.js';
import { PEERS, type Peer } from './peers.js';
import { type SpoolFigures, spoolFigures, spoolingSink } from './spool.js';

installFatalHandlers();

/** Events per tick of the producer. */
const CHUNK = 250;

interface Driver {
  /** Produces event `i`; may return a promise to apply the SDK's own back-pressure (callbacks in flight). */
  track(i: number): void | Promise<void>;
  /** Resolves once the SDK says everything is acknowledged. */
  finish(): Promise<void>;
  /** Counters the SDK exposes, for the report (drops, requests). */
  stats(): Record<string, unknown>;
}

const [peerArg, countArg, portArg] = process.argv.slice(2);
const peer = peerArg as Peer;
const total = Number(countArg);
const port = Number(portArg);
const base = `http://127.0.0.1:${port}`;
const errors: string[] = [];
const noteError = (error: unknown) => {
  if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
};

async function idstitchDriver(spool: boolean): Promise<Driver | { skipped: string }> {
  const options = { token: TOKEN, apiSecret: API_SECRET, host: `${base}/`, onError: noteError };
  let sink: MixpanelSink;
  let dir: string | undefined;
  if (spool) {
    const made = await spoolingSink(options);
    if ('skipped' in made) return made;
    ({ sink, dir } = made);
  } else {
    // Memory only, said explicitly: without it a production process reports once how to turn the spool on.
    sink = new MixpanelSink({ ...options, spool: false });
  }
  const engine = createIdstitch(
    { sink, onError: noteError, cookie: { secret: COOKIE_SECRET } },
    { resolveUserId: () => undefined },
  );
  let spooled: SpoolFigures | undefined;
  return {
    track: (i) => engine.forUser(userId(i)).track(EVENT_NAME, eventProperties(i)),
    finish: async () => {
      await engine.close(60_000);
      if (dir !== undefined) {
        spooled = spoolFigures(sink.stats());
        rmSync(dir, { recursive: true, force: true });
      }
    },
    stats: () => ({ ...sink.stats(), ...(spooled ? { spooled } : {}) }),
  };
}

/** The tracker alone: what `forUser().track()` costs before any sink serialises or sends anything. */
function discardingDriver(): Driver {
  let written = 0;
  const sink: Sink = {
    write() {
      written += 1;
    },
    flush: async () => {},
    close: async () => {},
  };
  const engine = createIdstitch(
    { sink, onError: noteError, cookie: { secret: COOKIE_SECRET } },
    { resolveUserId: () => undefined },
  );
  return {
    track: (i) => engine.forUser(userId(i)).track(EVENT_NAME, eventProperties(i)),
    finish: () => engine.close(1000),
    stats: () => ({ written }),
  };
}

/** Calls with a callback, at most `limit` outstanding; what a server with `limit` requests in flight does. */
function inFlightLimiter(limit: number) {
  let outstanding = 0;
  let wake: (() => void) | undefined;
  let settleAll: (() => void) | undefined;
  return {
    start(): Promise<void> | undefined {
      outstanding += 1;
      if (outstanding < limit) return undefined;
      return new Promise<void>((resolve) => {
        wake = resolve;
      });
    },
    done(): void {
      outstanding -= 1;
      const resume = wake;
      wake = undefined;
      resume?.();
      if (outstanding === 0) settleAll?.();
    },
    idle(): Promise<void> {
      if (outstanding === 0) return Promise.resolve();
      return new Promise((resolve) => {
        settleAll = resolve;
      });
    },
  };
}

function mixpanelTrackDriver(): Driver {
  const mixpanel = Mixpanel.init(TOKEN, { host: `127.0.0.1:${port}`, protocol: 'http' });
  // The official client has no queue: one GET per event. 64 in flight, as from 64 concurrent requests;
  // unbounded, 200 000 calls would open as many sockets and exhaust the ephemeral ports.
  const limiter = inFlightLimiter(64);
  let failed = 0;
  return {
    track(i) {
      const wait = limiter.start();
      mixpanel.track(EVENT_NAME, { distinct_id: userId(i), ...eventProperties(i) }, (error) => {
        if (error) {
          failed += 1;
          noteError(error);
        }
        limiter.done();
      });
      return wait;
    },
    finish: () => limiter.idle(),
    stats: () => ({ failed }),
  };
}

function mixpanelImportBatchDriver(): Driver {
  // `secret` requires https in this client; the deprecated `key` (api_key query parameter) works over http.
  const mixpanel = Mixpanel.init(TOKEN, {
    host: `127.0.0.1:${port}`,
    protocol: 'http',
    key: API_SECRET,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
  } as Partial<Mixpanel.InitConfig>);
  // Its typings declare import_batch(string[], options, callback); the code takes event objects.
  const importBatch = mixpanel.import_batch.bind(mixpanel) as unknown as (
    events: Array<{ event: string; properties: Record<string, unknown> }>,
    options: { max_concurrent_requests: number },
    callback: (errors: Error[] | undefined | null) => void,
  ) => void;
  // import_batch has no queue either: the app collects events and hands over arrays. Batches of 2000
  // (Mixpanel's maximum per request; the client still cuts them into requests of 50), 10 requests at a
  // time (Mixpanel's advice is 10-20 concurrent clients), one array at a time.
  const BATCH = 2000;
  let pending: Array<{ event: string; properties: Record<string, unknown> }> = [];
  let failed = 0;
  const send = (events: typeof pending) =>
    new Promise<void>((resolve) => {
      importBatch(events, { max_concurrent_requests: 10 }, (batchErrors) => {
        if (batchErrors) {
          failed += batchErrors.length;
          noteError(batchErrors[0]);
        }
        resolve();
      });
    });
  return {
    track(i) {
      pending.push({
        event: EVENT_NAME,
        properties: {
          distinct_id: userId(i),
          time: Date.now(),
          $insert_id: `insert-${process.pid}-${i}`,
          ...eventProperties(i),
        },
      });
      if (pending.length < BATCH) return undefined;
      const events = pending;
      pending = [];
      return send(events);
    },
    finish: async () => {
      if (pending.length > 0) await send(pending);
      pending = [];
    },
    stats: () => ({ failedRequests: failed }),
  };
}

function segmentDriver(): Driver {
  const analytics = new Analytics({ writeKey: TOKEN, host: base, path: '/v1/batch' });
  let failed = 0;
  analytics.on('error', (error) => {
    failed += 1;
    noteError(error);
  });
  return {
    track: (i) => analytics.track({ userId: userId(i), event: EVENT_NAME, properties: eventProperties(i) }),
    finish: () => analytics.closeAndFlush({ timeout: 120_000 }),
    stats: () => ({ failed }),
  };
}

function posthogDriver(defaults: boolean): Driver {
  // maxQueueSize raised from its default of 1000, which drops the oldest events of any burst larger than
  // that before they can be sent; `posthog-defaults` shows what the default does to the same burst.
  const posthog = defaults
    ? new PostHog(TOKEN, { host: base })
    : new PostHog(TOKEN, { host: base, maxQueueSize: total });
  let failed = 0;
  posthog.on('error', (error: unknown) => {
    failed += 1;
    noteError(error);
  });
  return {
    track: (i) =>
      posthog.capture({ distinctId: userId(i), event: EVENT_NAME, properties: eventProperties(i) }),
    finish: () => posthog.shutdown(120_000),
    stats: () => ({ failed }),
  };
}

const drivers: Record<Peer, () => Driver | { skipped: string } | Promise<Driver | { skipped: string }>> = {
  idstitch: () => idstitchDriver(false),
  'idstitch-spool': () => idstitchDriver(true),
  'idstitch-discard': discardingDriver,
  'mixpanel-track': mixpanelTrackDriver,
  'mixpanel-import-batch': mixpanelImportBatchDriver,
  segment: segmentDriver,
  posthog: () => posthogDriver(false),
  'posthog-defaults': () => posthogDriver(true),
};

async function main(): Promise<void> {
  const make = drivers[peer];
  if (!make || !Number.isInteger(total) || total <= 0 || !port) {
    throw new Error(`usage: client.js <${PEERS.join('|')}> <events> <port>`);
  }
  const driver = await make();
  if ('skipped' in driver) {
    reply({ type: 'result', peer, skipped: driver.skipped });
    setTimeout(() => process.exit(0), 20);
    return;
  }
  const rssBefore = process.memoryUsage.rss();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < total; ) {
    const end = Math.min(total, i + CHUNK);
    for (; i < end; i++) {
      const wait = driver.track(i);
      if (wait) await wait;
    }
    await nextTick();
  }
  const producedMs = performance.now() - t0;
  await driver.finish();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  reply({
    type: 'result',
    peer,
    events: total,
    wallMs,
    producedMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    rssBefore,
    peakRss: peakRss(),
    sdk: driver.stats(),
    // The discarding diagnostic delivers nothing: its per-event figures count the events it was given.
    handled: peer === 'idstitch-discard' ? total : undefined,
    errors,
  });
  // Some SDKs keep timers or sockets; the measurement is over.
  setTimeout(() => process.exit(0), 50);
}

void main();
