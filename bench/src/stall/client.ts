/**
 * Memory under stall: the ingest server reads requests and never answers while this process tracks N events
 * through idstitch (`forUser().track()` into a MixpanelSink with its default budgets). `client.js <events> <port>`.
 *
 * Reports the peak RSS (the kernel's high-water mark, so a spike between samples is not missed), the RSS
 * before the first event, the queue budget and the most of it that was used, and the drop count.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTick } from 'node:timers/promises';
import { createIdstitch, MixpanelSink, type Sink } from '@idstitch/core';
import { installFatalHandlers, peakRss, reply } from '../lib/child.js';
import { API_SECRET, COOKIE_SECRET, EVENT_NAME, eventProperties, TOKEN, userId } from '../lib/fixtures.js';

installFatalHandlers();

const total = Number(process.argv[2]);
const port = Number(process.argv[3]);
/** `stall`: MixpanelSink to the stalled server. `discard`: the same loop into a sink that drops everything. */
const mode = process.argv[4] === 'discard' ? 'discard' : 'stall';
const CHUNK = 1000;

const reports = new Map<string, number>();
/** The configured budget: MixpanelSink's defaults, spelled out so that the report states them. */
const budget = { maxQueueMessages: 10_000, maxQueueBytes: 16 * 1024 * 1024 };
const sink = new MixpanelSink({
  ...budget,
  token: TOKEN,
  apiSecret: API_SECRET,
  host: `http://127.0.0.1:${port}/`,
  onError: (error) => reports.set(error.code, (reports.get(error.code) ?? 0) + 1),
});
let discarded = 0;
const discarding: Sink = {
  write() {
    discarded += 1;
  },
  flush: async () => {},
  close: async () => {},
};
const engine = createIdstitch(
  { sink: mode === 'stall' ? sink : discarding, cookie: { secret: COOKIE_SECRET } },
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
const during = sink.stats();
const peakWhileTracking = peakRss();
// What is still alive once the garbage is collected (the runner starts this process with --expose-gc):
// the queue and the runtime, as opposed to the garbage V8 had not collected yet at the peak.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const retainedHeap = process.memoryUsage().heapUsed;
// Nothing will be answered: give up the queue quickly, as a shutdown under an outage would.
await engine.close(500);
const after = sink.stats();
reply({
  type: 'result',
  events: total,
  trackMs,
  eventsPerSecond: total / (trackMs / 1000),
  rssBefore,
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
});
setTimeout(() => process.exit(0), 20);
