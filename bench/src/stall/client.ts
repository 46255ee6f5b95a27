/**
 * Memory under stall: the ingest server reads requests and never answers while this process tracks N events
 * through idstitch (`forUser().track()` into a MixpanelSink with its default budgets). `client.js <events> <port>`.
 *
 * Reports the peak RSS (the kernel's high-water mark, so a spike between samples is not missed), the RSS
 * before the first event, the queue budget and the most of it that was used, and the drop count.
 */

import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTick } from 'node:timers/promises';
import type { IdstitchError, Sink } from '@idstitch/core';
import { installFatalHandlers, peakRss, reply } from '../lib/child.js';
import { API_SECRET, COOKIE_SECRET, EVENT_NAME, eventProperties, TOKEN, userId } from '../lib/fixtures.js';

installFatalHandlers();

// RSS of Node alone (and this file's few imports), then idstitch's modules loaded on top of it.
const rssNodeOnly = process.memoryUsage.rss();
const { createIdstitch, MixpanelSink } = await import('@idstitch/core');
const { directoryBytes, spoolFigures, spoolingSink } = await import('../delivery/spool.js');

const total = Number(process.argv[2]);
const port = Number(process.argv[3]);
/**
 * `stall`: MixpanelSink to the stalled server. `spool`: the same with the disk spool on (issue 11). `discard`: the
 * same loop into a sink that drops everything.
 */
const mode = process.argv[4] === 'discard' ? 'discard' : process.argv[4] === 'spool' ? 'spool' : 'stall';
/**
 * Events per turn of the event loop. A server yields between requests: at 10 000 requests/s with 1 ms turns it
 * tracks about 10 events a turn; 100 keeps the run short and peaks where 10 does (within 1 MiB), while 1000 tight
 * calls per turn grew V8's young generation (and the peak RSS) by another 10 MiB that no server would see.
 */
const CHUNK = 100;

const reports = new Map<string, number>();
/**
 * MixpanelSink's default budget, spelled out so that the report states it: 16 MiB of serialised messages, and no
 * message cap of its own (100 000 000). The sink is built with its defaults, not with these values; a run whose
 * queue grows past them (defaults changed) is refused below rather than reported against the wrong budget.
 */
const budget = { maxQueueMessages: 100_000_000, maxQueueBytes: 16 * 1024 * 1024 };
const options = {
  token: TOKEN,
  apiSecret: API_SECRET,
  host: `http://127.0.0.1:${port}/`,
  onError: (error: IdstitchError) => reports.set(error.code, (reports.get(error.code) ?? 0) + 1),
};
const spooling = mode === 'spool' ? await spoolingSink(options) : undefined;
if (spooling && 'skipped' in spooling) {
  reply({ type: 'result', skipped: spooling.skipped });
  setTimeout(() => process.exit(0), 20);
  await new Promise(() => {});
}
// Memory only, said explicitly (`spool: false`): without it a production process reports once how to turn the spool on.
const sink = spooling && 'sink' in spooling ? spooling.sink : new MixpanelSink({ ...options, spool: false });
const spoolDir = spooling && 'dir' in spooling ? spooling.dir : undefined;
let discarded = 0;
const discarding: Sink = {
  write() {
    discarded += 1;
  },
  flush: async () => {},
  close: async () => {},
};
const engine = createIdstitch(
  { sink: mode === 'discard' ? discarding : sink, cookie: { secret: COOKIE_SECRET } },
  { resolveUserId: () => undefined },
);

let maxQueued = 0;
let maxQueuedBytes = 0;
let maxHeapUsed = 0;
let maxSampledRss = 0;
const sample = () => {
  const stats = sink.stats();
  maxQueued = Math.max(maxQueued, stats.queued);
  maxQueuedBytes = Math.max(maxQueuedBytes, stats.queuedBytes);
  const memory = process.memoryUsage();
  maxHeapUsed = Math.max(maxHeapUsed, memory.heapUsed);
  maxSampledRss = Math.max(maxSampledRss, memory.rss);
};

const rssBefore = process.memoryUsage.rss();
const peakBefore = peakRss();
const t0 = performance.now();
for (let i = 0; i < total; ) {
  const end = Math.min(total, i + CHUNK);
  for (; i < end; i++) engine.forUser(userId(i)).track(EVENT_NAME, eventProperties(i));
  sample();
  await nextTick();
}
const trackMs = performance.now() - t0;
if (mode !== 'discard' && maxQueuedBytes > budget.maxQueueBytes) {
  throw new Error(
    `the queue held ${maxQueuedBytes} bytes, past the ${budget.maxQueueBytes} this bench states as MixpanelSink's default budget: update it`,
  );
}
const during = sink.stats();
const peakWhileTracking = peakRss();
// What the spool holds once tracking is over: its counters, and the bytes of its files on disk.
const spooled =
  spoolDir === undefined ? undefined : { ...spoolFigures(during), diskBytes: directoryBytes(spoolDir) };
// What is still alive once the garbage is collected (the runner starts this process with --expose-gc):
// the queue and the runtime, as opposed to the garbage V8 had not collected yet at the peak.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const retainedHeap = process.memoryUsage().heapUsed;
// Nothing will be answered: give up the queue quickly, as a shutdown under an outage would.
await engine.close(500);
const after = sink.stats();
if (spoolDir !== undefined) rmSync(spoolDir, { recursive: true, force: true });
reply({
  type: 'result',
  events: total,
  trackMs,
  eventsPerSecond: total / (trackMs / 1000),
  rssBefore,
  rssNodeOnly,
  peakBefore,
  mode,
  discarded,
  peakRss: peakWhileTracking,
  retainedHeap,
  maxSampledRss,
  maxHeapUsed,
  budget,
  maxQueued,
  maxQueuedBytes,
  during,
  after,
  reports: Object.fromEntries(reports),
  spooled,
});
setTimeout(() => process.exit(0), 20);
