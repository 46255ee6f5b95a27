import type { BenchConfig } from '../config.js';
import { Ingest } from '../ingest/client.js';
import { Child } from '../lib/child.js';
import { log } from '../lib/log.js';
import { type Summary, summarize } from '../lib/stats.js';
import { PEERS, type Peer } from './peers.js';

export interface DeliveryRun {
  peer: Peer;
  round: number;
  events: number;
  /** Events the ingest server counted. */
  received: number;
  /** Events the per-event figures divide by: those received, or for the discarding diagnostic those tracked. */
  counted: number;
  requests: number;
  wallMs: number;
  producedMs: number;
  cpuMs: number;
  bytesIn: number;
  bytesOut: number;
  peakRss: number;
  rssBefore: number;
  eventsPerSecond: number;
  eventsPerCpuSecond: number;
  bytesPer100k: number;
  sdk: Record<string, unknown>;
  errors: string[];
}

export interface DeliverySummary {
  peer: Peer;
  eventsPerSecond: Summary;
  cpuSecondsPer100k: Summary;
  eventsPerCpuSecond: Summary;
  bytesPer100k: Summary;
  requestsPer100k: Summary;
  peakRssMb: Summary;
  rssGrowthMb: Summary;
  receivedRatio: Summary;
}

export interface DeliveryResult {
  events: number;
  rounds: number;
  runs: DeliveryRun[];
  summaries: DeliverySummary[];
  /** Variants that could not run, with the reason (e.g. the spool option is not in this idstitch). */
  skipped: Array<{ peer: Peer; reason: string }>;
}

export async function runPeer(
  peer: Peer,
  events: number,
  round: number,
  execArgv: string[] = [],
): Promise<DeliveryRun | { peer: Peer; skipped: string }> {
  const ingest = await Ingest.start({ pinned: true });
  try {
    const client = new Child(
      'delivery/client.js',
      [peer, String(events), String(ingest.port)],
      execArgv,
      'measured',
    );
    const result = await client.waitFor('result', 600_000);
    await client.exit(10_000);
    if (typeof result.skipped === 'string') return { peer, skipped: result.skipped };
    // The last acknowledgements are on the wire before the client's promise resolves; the counts are final.
    const stats = await ingest.stats();
    const wallMs = result.wallMs as number;
    const counted = typeof result.handled === 'number' ? result.handled : stats.events;
    const cpuMs = result.cpuMs as number;
    return {
      peer,
      round,
      events,
      received: stats.events,
      counted,
      requests: stats.requests,
      wallMs,
      producedMs: result.producedMs as number,
      cpuMs,
      bytesIn: stats.bytesIn,
      bytesOut: stats.bytesOut,
      peakRss: result.peakRss as number,
      rssBefore: result.rssBefore as number,
      eventsPerSecond: counted / (wallMs / 1000),
      eventsPerCpuSecond: counted / (cpuMs / 1000),
      bytesPer100k: stats.events > 0 ? (stats.bytesIn / stats.events) * 100_000 : Number.NaN,
      sdk: result.sdk as Record<string, unknown>,
      errors: result.errors as string[],
    };
  } finally {
    await ingest.close();
  }
}

export async function runDelivery(
  config: BenchConfig,
  peers: readonly Peer[] = PEERS,
): Promise<DeliveryResult> {
  const { rounds, events } = config.delivery;
  const runs: DeliveryRun[] = [];
  const skipped: DeliveryResult['skipped'] = [];
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so that no SDK always runs first (cold disk cache) or last.
    const order = peers.map((_, i) => peers[(i + round) % peers.length] as Peer);
    for (const peer of order) {
      if (skipped.some((skip) => skip.peer === peer)) continue;
      const run = await runPeer(peer, events, round);
      if ('skipped' in run) {
        log(`delivery ${peer}: skipped: ${run.skipped}`);
        skipped.push({ peer, reason: run.skipped });
        continue;
      }
      log(
        `delivery r${round + 1} ${peer}: ${Math.round(run.eventsPerSecond)} ev/s, ${Math.round(run.cpuMs)} ms CPU, ` +
          `${Math.round(run.bytesPer100k / 1024)} KiB/100k, peak RSS ${Math.round(run.peakRss / 2 ** 20)} MiB, ` +
          `received ${run.received}/${run.events}${run.errors.length ? `, errors: ${run.errors.join(' | ')}` : ''}`,
      );
      runs.push(run);
    }
  }
  const measured = peers.filter((peer) => !skipped.some((skip) => skip.peer === peer));
  const summaries = measured.map((peer): DeliverySummary => {
    const mine = runs.filter((run) => run.peer === peer);
    const of = (pick: (run: DeliveryRun) => number) => summarize(mine.map(pick));
    return {
      peer,
      eventsPerSecond: of((run) => run.eventsPerSecond),
      cpuSecondsPer100k: of((run) => (run.cpuMs / 1000 / Math.max(1, run.counted)) * 100_000),
      eventsPerCpuSecond: of((run) => run.eventsPerCpuSecond),
      bytesPer100k: of((run) => run.bytesPer100k),
      requestsPer100k: of((run) => (run.requests / Math.max(1, run.received)) * 100_000),
      peakRssMb: of((run) => run.peakRss / 2 ** 20),
      rssGrowthMb: of((run) => (run.peakRss - run.rssBefore) / 2 ** 20),
      receivedRatio: of((run) => run.received / run.events),
    };
  });
  return { events, rounds, runs, summaries, skipped };
}
