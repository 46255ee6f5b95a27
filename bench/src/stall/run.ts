import type { BenchConfig } from '../config.js';
import { Ingest } from '../ingest/client.js';
import { Child, type Message } from '../lib/child.js';
import { log } from '../lib/log.js';
import { type Summary, summarize } from '../lib/stats.js';

export interface StallRun {
  round: number;
  events: number;
  trackMs: number;
  eventsPerSecond: number;
  rssBeforeMb: number;
  /** RSS of the same process before it loaded idstitch's modules: Node itself. */
  rssNodeOnlyMb: number;
  peakRssMb: number;
  growthMb: number;
  maxHeapUsedMb: number;
  /** Heap still used after a full GC at the end of tracking (the queue plus the runtime). */
  retainedHeapMb: number;
  budgetMessages: number;
  budgetMb: number;
  maxQueued: number;
  maxQueuedMb: number;
  droppedOverflow: number;
  droppedShutdown: number;
  delivered: number;
  tracked: number;
  /** Requests the stalled server received (and never answered). */
  ingestRequests: number;
  reports: Record<string, number>;
  /** The same stalled run with the disk spool on (issue 11), or why it was skipped. */
  spool: StallSpoolRun | { skipped: string };
  /** Baseline of the same round: the same loop into a sink that discards everything. */
  discard: {
    peakRssMb: number;
    rssBeforeMb: number;
    retainedHeapMb: number;
    maxHeapUsedMb: number;
    trackMs: number;
  };
}

export interface StallSpoolRun {
  trackMs: number;
  rssBeforeMb: number;
  peakRssMb: number;
  maxHeapUsedMb: number;
  maxQueued: number;
  maxQueuedMb: number;
  /** Dropped by the end of tracking, all reasons: with a spool that has room, none. */
  droppedWhileTracking: number;
  /** Records and bytes the spool reported, and the bytes of its files on disk, at the end of tracking. */
  spooledRecords: number;
  spooledBytes: number;
  diskBytes: number;
}

export interface StallResult {
  events: number;
  rounds: number;
  runs: StallRun[];
  peakRssMb: Summary;
  growthMb: Summary;
  retainedHeapMb: Summary;
  discardPeakRssMb: Summary;
  /** Peak RSS of the stalled run minus that of the discarding baseline: what the stalled queue costs. */
  overDiscardMb: Summary;
  budgetMb: number;
  limitMb: number;
  /** Peak RSS with the spool on, over the rounds it ran; undefined when skipped. */
  spoolPeakRssMb: Summary | undefined;
  spoolSkipped: string | undefined;
}

const MB = 2 ** 20;

async function client(events: number, port: number, mode: 'stall' | 'spool' | 'discard'): Promise<Message> {
  const child = new Child(
    'stall/client.js',
    [String(events), String(port), mode],
    ['--expose-gc'],
    'measured',
  );
  const result = await child.waitFor('result', 600_000);
  await child.exit(10_000);
  return result;
}

export async function runStall(config: BenchConfig): Promise<StallResult> {
  const { events, rounds } = config.stall;
  const runs: StallRun[] = [];
  for (let round = 0; round < rounds; round++) {
    const ingest = await Ingest.start({ pinned: true });
    try {
      const base = await client(events, ingest.port, 'discard');
      await ingest.stall(true);
      const result = await client(events, ingest.port, 'stall');
      const stats = await ingest.stats();
      const spooled = await client(events, ingest.port, 'spool');
      const budget = result.budget as { maxQueueMessages: number; maxQueueBytes: number };
      const during = result.during as { dropped: Record<string, number> };
      const after = result.after as { dropped: Record<string, number>; delivered: number; tracked: number };
      const run: StallRun = {
        round,
        events,
        trackMs: result.trackMs as number,
        eventsPerSecond: result.eventsPerSecond as number,
        rssBeforeMb: (result.rssBefore as number) / MB,
        rssNodeOnlyMb: (result.rssNodeOnly as number) / MB,
        peakRssMb: (result.peakRss as number) / MB,
        growthMb: ((result.peakRss as number) - (result.rssBefore as number)) / MB,
        maxHeapUsedMb: (result.maxHeapUsed as number) / MB,
        retainedHeapMb: (result.retainedHeap as number) / MB,
        budgetMessages: budget.maxQueueMessages,
        budgetMb: budget.maxQueueBytes / MB,
        maxQueued: result.maxQueued as number,
        maxQueuedMb: (result.maxQueuedBytes as number) / MB,
        droppedOverflow: during.dropped.queue_overflow ?? 0,
        droppedShutdown: after.dropped.shutdown_timeout ?? 0,
        delivered: after.delivered,
        tracked: after.tracked,
        ingestRequests: stats.requests,
        reports: result.reports as Record<string, number>,
        spool: spoolRun(spooled),
        discard: {
          peakRssMb: (base.peakRss as number) / MB,
          rssBeforeMb: (base.rssBefore as number) / MB,
          retainedHeapMb: (base.retainedHeap as number) / MB,
          maxHeapUsedMb: (base.maxHeapUsed as number) / MB,
          trackMs: base.trackMs as number,
        },
      };
      log(
        `stall r${round + 1}: ${events} events in ${Math.round(run.trackMs)} ms, peak RSS ${run.peakRssMb.toFixed(1)} MiB ` +
          `(before ${run.rssBeforeMb.toFixed(1)}, discarding baseline ${run.discard.peakRssMb.toFixed(1)}), retained heap ` +
          `${run.retainedHeapMb.toFixed(1)} MiB, queue max ${run.maxQueued} msgs / ${run.maxQueuedMb.toFixed(1)} MiB, ` +
          `dropped ${run.droppedOverflow} overflow + ${run.droppedShutdown} at close`,
      );
      if ('skipped' in run.spool) log(`stall r${round + 1} with the spool: skipped: ${run.spool.skipped}`);
      else {
        log(
          `stall r${round + 1} with the spool: peak RSS ${run.spool.peakRssMb.toFixed(1)} MiB, queue max ` +
            `${run.spool.maxQueuedMb.toFixed(1)} MiB, spooled ${run.spool.spooledRecords} records / ` +
            `${(run.spool.diskBytes / MB).toFixed(1)} MiB on disk, dropped ${run.spool.droppedWhileTracking}`,
        );
      }
      runs.push(run);
    } finally {
      await ingest.close();
    }
  }
  const budgetMb = runs[0]?.budgetMb ?? 16;
  const spoolRuns = runs.flatMap((run) => ('skipped' in run.spool ? [] : [run.spool]));
  const skippedRun = runs.find((run) => 'skipped' in run.spool)?.spool as { skipped: string } | undefined;
  return {
    events,
    rounds,
    runs,
    peakRssMb: summarize(runs.map((run) => run.peakRssMb)),
    growthMb: summarize(runs.map((run) => run.growthMb)),
    retainedHeapMb: summarize(runs.map((run) => run.retainedHeapMb)),
    discardPeakRssMb: summarize(runs.map((run) => run.discard.peakRssMb)),
    overDiscardMb: summarize(runs.map((run) => run.peakRssMb - run.discard.peakRssMb)),
    budgetMb,
    limitMb: budgetMb + 64,
    spoolPeakRssMb: spoolRuns.length > 0 ? summarize(spoolRuns.map((run) => run.peakRssMb)) : undefined,
    spoolSkipped: skippedRun?.skipped,
  };
}

function spoolRun(result: Message): StallSpoolRun | { skipped: string } {
  if (typeof result.skipped === 'string') return { skipped: result.skipped };
  const during = result.during as { droppedTotal: number };
  const spooled = (result.spooled ?? {}) as { records?: number; bytes?: number; diskBytes?: number };
  return {
    trackMs: result.trackMs as number,
    rssBeforeMb: (result.rssBefore as number) / MB,
    peakRssMb: (result.peakRss as number) / MB,
    maxHeapUsedMb: (result.maxHeapUsed as number) / MB,
    maxQueued: result.maxQueued as number,
    maxQueuedMb: (result.maxQueuedBytes as number) / MB,
    droppedWhileTracking: during.droppedTotal,
    spooledRecords: spooled.records ?? Number.NaN,
    spooledBytes: spooled.bytes ?? Number.NaN,
    diskBytes: spooled.diskBytes ?? Number.NaN,
  };
}
