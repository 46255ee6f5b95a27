/** RESULTS.md and results.json from one run: targets first (pass/fail computed here), then every table. */
import type { BenchConfig } from './config.js';
import { isIdstitch, MIN_DELIVERED_FOR_TARGETS, PEER_LABELS, type Peer } from './delivery/peers.js';
import type { DeliveryResult, DeliverySummary } from './delivery/run.js';
import type { Category } from './instructions/breakdown.js';
import {
  addedByCategory,
  breakdownTables,
  HANDWRITTEN_GOAL,
  instructionTables,
  instructionTargets,
  perRequest,
  REQUEST_GOALS,
} from './instructions/report.js';
import type { InstructionResult } from './instructions/run.js';
import { cell, fmt, ratio, type Summary, spreadCell } from './lib/stats.js';
import type { LoadSnapshot, MachineInfo } from './machine.js';
import type { MicroResult } from './micro/run.js';
import type { OverheadResult, OverheadSummary } from './overhead/run.js';
import {
  FRAMEWORK_LABELS,
  FRAMEWORKS,
  type Framework,
  VARIANT_LABELS,
  type Variant,
} from './overhead/variants.js';
import type { StallResult } from './stall/run.js';

export interface BenchResults {
  config: BenchConfig;
  machine: MachineInfo;
  load: LoadSnapshot[];
  pinning: { enabled: boolean; measured: number; helpers: number };
  durationSeconds: number;
  overhead?: OverheadResult;
  delivery?: DeliveryResult;
  stall?: StallResult;
  micro?: MicroResult;
  instructions?: InstructionResult;
  targets: Target[];
  profiles: Array<{ target: string; markdown: string }>;
  notes: string[];
}

export interface Target {
  id: string;
  description: string;
  goal: string;
  measured: string;
  value: number;
  pass: boolean | undefined;
  /** What was measured when the target could not be evaluated, or what the figure hides. */
  detail?: string;
}

function overheadRow(result: OverheadResult | undefined, framework: Framework, variant: Variant) {
  return result?.summaries.find((row) => row.framework === framework && row.variant === variant);
}

/** `mixpanel`'s `import_batch`, the delivery targets' baseline (issue 12), when it delivered (nearly) everything. */
export function importBatch(delivery: DeliveryResult): DeliverySummary | undefined {
  return delivery.summaries.find(
    (row) => row.peer === 'mixpanel-import-batch' && row.receivedRatio.median >= MIN_DELIVERED_FOR_TARGETS,
  );
}

/** Best peer: most events per CPU second among those that delivered everything (shown beside the targets). */
export function bestPeer(delivery: DeliveryResult): DeliverySummary | undefined {
  return delivery.summaries
    .filter((row) => !isIdstitch(row.peer) && row.receivedRatio.median >= MIN_DELIVERED_FOR_TARGETS)
    .sort((a, b) => b.eventsPerCpuSecond.median - a.eventsPerCpuSecond.median)[0];
}

/** Issue 12's delivery targets: events per CPU second against the best peer, and bytes on the wire against it. */
export const DELIVERY_CPU_GOAL = 1.1;
export const DELIVERY_BYTES_GOAL = 0.1;
/** The disk spool's write buffer (docs/delivery.md, "Records waiting for their write"), in MiB. */
export const SPOOL_WRITE_BUFFER_MB = 16;

export function computeTargets(
  results: Pick<BenchResults, 'overhead' | 'delivery' | 'stall' | 'instructions'>,
): Target[] {
  const targets: Target[] = [...instructionTargets(results.instructions)];
  const { overhead, delivery, stall } = results;
  const mine = delivery?.summaries.find((row) => row.peer === 'idstitch');
  const base = delivery ? importBatch(delivery) : undefined;
  const best = delivery ? bestPeer(delivery) : undefined;
  const cpuRatio =
    mine && base ? ratio(mine.eventsPerCpuSecond.median, base.eventsPerCpuSecond.median) : Number.NaN;
  const usPerEvent = (row: DeliverySummary | undefined) =>
    row ? (row.cpuSecondsPer100k.median / 100_000) * 1e6 : Number.NaN;
  targets.push({
    id: 'delivery-cpu',
    description: "Delivery: events per CPU second, idstitch against `mixpanel`'s `import_batch`",
    goal: `≥ ${DELIVERY_CPU_GOAL}×, validating every event and gzipping`,
    measured: Number.isFinite(cpuRatio)
      ? `${fmt(cpuRatio, 2)}× (${fmt(mine?.eventsPerCpuSecond.median ?? 0)} vs ${fmt(base?.eventsPerCpuSecond.median ?? 0)}; ${fmt(usPerEvent(mine), 1)} vs ${fmt(usPerEvent(base), 1)} µs of CPU per event)`
      : 'not run',
    value: cpuRatio,
    pass: Number.isFinite(cpuRatio) ? cpuRatio >= DELIVERY_CPU_GOAL : undefined,
    detail:
      best && best.peer !== base?.peer && mine
        ? `Against the peer with the most events per CPU second (${best.peer}): ${fmt(ratio(mine.eventsPerCpuSecond.median, best.eventsPerCpuSecond.median), 2)}×.`
        : undefined,
  });
  const bytesRatio = mine && base ? ratio(mine.bytesPer100k.median, base.bytesPer100k.median) : Number.NaN;
  targets.push({
    id: 'delivery-bytes',
    description: "Delivery: bytes on the wire, idstitch against `import_batch`'s",
    goal: `≤ ${DELIVERY_BYTES_GOAL}×`,
    measured: Number.isFinite(bytesRatio)
      ? `${fmt(bytesRatio, 3)}× (${fmt((mine?.bytesPer100k.median ?? 0) / 2 ** 20, 1)} vs ${fmt((base?.bytesPer100k.median ?? 0) / 2 ** 20, 1)} MiB per 100 000 events)`
      : 'not run',
    value: bytesRatio,
    pass: Number.isFinite(bytesRatio) ? bytesRatio <= DELIVERY_BYTES_GOAL : undefined,
  });
  const delivered = mine
    ? delivery?.runs
        .filter((run) => run.peer === 'idstitch')
        .reduce((sum, run) => ({ received: sum.received + run.received, events: sum.events + run.events }), {
          received: 0,
          events: 0,
        })
    : undefined;
  targets.push({
    id: 'delivery-share',
    description: 'Delivery: share of the events idstitch delivered, every round',
    goal: '100 %',
    measured: delivered
      ? `${fmt((mine?.receivedRatio.min ?? 0) * 100, 2)} % in the worst round (${fmt(delivered.received)} of ${fmt(delivered.events)})`
      : 'not run',
    value: mine?.receivedRatio.min ?? Number.NaN,
    pass: mine ? mine.receivedRatio.min >= 1 : undefined,
  });
  targets.push({
    id: 'stall-memory',
    description: `Memory under stall: peak RSS while ${stall ? fmt(stall.events) : '1 000 000'} events are tracked against a server that never answers`,
    goal: stall
      ? `≤ ${fmt(stall.limitMb)} MiB (budget ${fmt(stall.budgetMb)} MiB + 64 MiB)`
      : '≤ budget + 64 MiB',
    measured: stall ? `${fmt(stall.peakRssMb.median, 1)} MiB (${spreadCell(stall.peakRssMb)})` : 'not run',
    value: stall?.peakRssMb.median ?? Number.NaN,
    pass: stall ? stall.peakRssMb.median <= stall.limitMb : undefined,
    detail: stall
      ? `Before the first event the process holds ${fmt(stall.runs[0]?.rssBeforeMb ?? Number.NaN, 1)} MiB: Node itself ` +
        `${fmt(stall.runs[0]?.rssNodeOnlyMb ?? Number.NaN, 1)} MiB, idstitch's modules the rest; ` +
        `the same loop into a discarding sink peaks at ${fmt(stall.discardPeakRssMb.median, 1)} MiB; heap still used ` +
        `after a full GC: ${fmt(stall.retainedHeapMb.median, 1)} MiB.`
      : undefined,
  });
  // A results.json from before issue 11 has no spool runs.
  const spoolRuns =
    stall?.runs.flatMap((run) => (run.spool === undefined || 'skipped' in run.spool ? [] : [run.spool])) ??
    [];
  const spoolDropped = spoolRuns.reduce((sum, run) => sum + run.droppedWhileTracking, 0);
  // Issue 11: "stays within the memory budget and spools the rest". The budget is the queue's; spilling must cost
  // no memory per spilled record, so the run may exceed the same stall without a spool by at most the spool's
  // write buffer (records waiting for their write, 16 MiB: docs/delivery.md).
  const spoolMaxQueuedMb = Math.max(...spoolRuns.map((run) => run.maxQueuedMb));
  const spoolRssLimitMb = stall ? stall.peakRssMb.median + SPOOL_WRITE_BUFFER_MB : Number.NaN;
  targets.push({
    id: 'stall-spool-memory',
    description: `Memory under stall with the disk spool on (issue 11): ${stall ? fmt(stall.events) : '1 000 000'} events tracked; the in-memory queue within its budget, none dropped, the rest spooled, and peak RSS no more than the same stall without a spool plus the spool's ${SPOOL_WRITE_BUFFER_MB} MiB write buffer`,
    goal: stall
      ? `queue ≤ ${fmt(stall.budgetMb)} MiB, 0 dropped, peak RSS ≤ ${fmt(spoolRssLimitMb, 1)} MiB`
      : 'queue ≤ budget, 0 dropped, peak RSS ≤ without spool + 16 MiB',
    measured: stall?.spoolPeakRssMb
      ? `queue at most ${fmt(spoolMaxQueuedMb, 1)} MiB, ${fmt(spoolDropped)} dropped, peak RSS ${fmt(stall.spoolPeakRssMb.median, 1)} MiB (${spreadCell(stall.spoolPeakRssMb)})`
      : stall?.spoolSkipped
        ? `skipped: ${stall.spoolSkipped}`
        : 'not run',
    value: stall?.spoolPeakRssMb?.median ?? Number.NaN,
    pass:
      stall?.spoolPeakRssMb && spoolRuns.length > 0
        ? stall.spoolPeakRssMb.median <= spoolRssLimitMb &&
          spoolDropped === 0 &&
          spoolMaxQueuedMb <= stall.budgetMb + 0.05
        : undefined,
    detail: spoolRuns[0]
      ? `Spooled at the end of tracking: ${fmt(spoolRuns[0].spooledRecords)} records, ${fmt(spoolRuns[0].diskBytes / 2 ** 20, 1)} MiB of segment files. ` +
        `Against the absolute ${stall ? fmt(stall.limitMb) : 80} MiB of issue 12, see the row above: the same stall without a spool misses it too.`
      : undefined,
  });
  targets.push({
    id: 'stall-memory-growth',
    description:
      'Memory under stall, read as growth (G5): peak RSS minus the RSS of the same process just before the first event',
    goal: stall ? `≤ ${fmt(stall.limitMb)} MiB` : '≤ budget + 64 MiB',
    measured: stall ? `${fmt(stall.growthMb.median, 1)} MiB (${spreadCell(stall.growthMb)})` : 'not run',
    value: stall?.growthMb.median ?? Number.NaN,
    pass: stall ? stall.growthMb.median <= stall.limitMb : undefined,
  });
  // Secondary: the same goals in req/s under autocannon (noisy on a shared machine; the instructions decide).
  for (const framework of ['express', 'koa', 'nest'] as const) {
    const row = overheadRow(overhead, framework, 'idstitch');
    const goal = REQUEST_GOALS.returning;
    targets.push({
      id: `overhead-${framework}`,
      description: `Secondary, req/s: ${FRAMEWORK_LABELS[framework]} with idstitch and one \`track()\` per request (returning visitor), as a share of bare`,
      goal: `≥ ${goal.toFixed(2)}×`,
      measured: row ? `${fmt(row.reqPerSecRatio.median, 2)}× (${spreadCell(row.reqPerSecRatio)})` : 'not run',
      value: row?.reqPerSecRatio.median ?? Number.NaN,
      pass: row ? row.reqPerSecRatio.median >= goal : undefined,
    });
  }
  return targets;
}

/**
 * Why the missed instruction targets were missed: the budget the goal leaves, what idstitch adds, and where that
 * goes by category (section 0's breakdown, from the same callgrind dumps).
 */
export function instructionMissNotes(
  result: InstructionResult | undefined,
  targets: readonly Target[],
): string[] {
  if (!result || result.skipped) return [];
  const failed = new Set(targets.filter((target) => target.pass === false).map((target) => target.id));
  const notes: string[] = [];
  const k = (value: number) => `${fmt(value / 1000, 0)}k`;
  for (const framework of FRAMEWORKS) {
    const bare = perRequest(result, `${framework}/bare/returning`);
    for (const visitor of ['returning', 'new'] as const) {
      if (!failed.has(`instructions-${framework}-${visitor}`)) continue;
      const mine = perRequest(result, `${framework}/idstitch/${visitor}`);
      const goal = REQUEST_GOALS[visitor];
      const allowed = bare / goal - bare;
      const top = addedByCategory(result, framework, visitor)
        .filter((entry) => entry.added >= 1000)
        .slice(0, 5)
        .map((entry) => `${CATEGORY_SHORT[entry.category]} +${k(entry.added)}`);
      const floor = Number.isFinite(result.floor) && result.floor > 0;
      notes.push(
        `${FRAMEWORK_LABELS[framework]}, ${visitor} visitor: bare runs ${k(bare)} instructions per request; a ${goal} share ` +
          `allows ${k(allowed)} added${floor ? ` (${fmt(allowed / result.floor, 1)}× the floor of ${k(result.floor)})` : ''}, ` +
          `and idstitch adds ${k(mine - bare)}${floor ? ` (${fmt((mine - bare) / result.floor, 1)}× the floor)` : ''}.` +
          (top.length > 0
            ? ` Where the added instructions go (section 0, by category): ${top.join(', ')}. JavaScript compiled at run ` +
              "time has no symbol under callgrind, so idstitch's own code and the framework's code it makes run are " +
              'one row; the property-access and runtime rows are V8 looking up properties on `req`/`res` and the ' +
              'objects idstitch builds.'
            : ''),
      );
    }
    const hand = failed.has(`instructions-vs-handwritten-${framework}`);
    if (hand) {
      const theirs = perRequest(result, `${framework}/handwritten/returning`) - bare;
      const mine = perRequest(result, `${framework}/idstitch/returning`) - bare;
      notes.push(
        `${FRAMEWORK_LABELS[framework]}: the hand-written recipe adds ${k(theirs)} per request (cookie-parser, a UUID, ` +
          `and \`mixpanel.track\`'s base64 GET per event); ${HANDWRITTEN_GOAL}× of it leaves idstitch ${k(theirs * HANDWRITTEN_GOAL)}, ` +
          `${fmt((theirs * HANDWRITTEN_GOAL) / result.floor, 1)}× the floor (what one tracked request cannot avoid), and ` +
          `idstitch adds ${k(mine)}: the same costs as the returning-visitor rows above.`,
      );
    }
  }
  return notes;
}

/** "## Why the missed instruction targets were missed", or '' when none was missed. */
export function instructionMissSection(
  result: InstructionResult | undefined,
  targets: readonly Target[],
): string {
  const notes = instructionMissNotes(result, targets);
  if (notes.length === 0) return '';
  return ['## Why the missed instruction targets were missed', '', ...notes.map((note) => `- ${note}`)].join(
    '\n',
  );
}

/** Short names of the breakdown's categories, for the notes. */
const CATEGORY_SHORT: Record<Category, string> = {
  gc: 'GC',
  json: 'JSON',
  crypto: 'crypto',
  zlib: 'zlib',
  ic: 'V8 property-access ICs',
  runtime: 'V8 runtime/API',
  interpreter: 'interpreter/baseline JS',
  builtins: 'other V8 builtins',
  jit: 'optimised JS',
  libuv: 'libuv',
  node: "node's C++",
  libc: 'libc/malloc',
  other: 'other',
};

/** Why each missed target was missed, in numbers from this run (the profiles below show where the time goes). */
export function missNotes(
  results: Pick<BenchResults, 'overhead' | 'delivery' | 'stall' | 'targets'>,
): string[] {
  // The instruction targets' reasons have a section of their own (instructionMissSection), which a run of the
  // instruction counts alone replaces.
  const notes: string[] = [];
  const failed = new Set(
    results.targets.filter((target) => target.pass === false).map((target) => target.id),
  );
  for (const framework of ['express', 'koa', 'nest'] as const) {
    const bare = overheadRow(results.overhead, framework, 'bare');
    const mine = overheadRow(results.overhead, framework, 'idstitch');
    if (!bare || !mine) continue;
    const goal = REQUEST_GOALS.returning;
    const budget = bare.cpuUsPerRequest.median / goal - bare.cpuUsPerRequest.median;
    if (failed.has(`overhead-${framework}`)) {
      notes.push(
        `${FRAMEWORK_LABELS[framework]}, req/s (secondary): bare costs ${fmt(bare.cpuUsPerRequest.median, 1)} µs of CPU per request; a ` +
          `${goal} ratio leaves about ${fmt(budget, 1)} µs for everything idstitch does, and it adds ` +
          `${fmt(mine.addedCpuUs.median, 1)} µs (${fmt(mine.addedUserUs.median, 1)} µs of it in user mode).` +
          (framework === 'nest'
            ? ' On Node 20, AsyncLocalStorage runs on async_hooks, which once enabled slows every promise of the ' +
              "request (Nest's pipeline has many); the `Scope.REQUEST` row shows what the alternative costs."
            : ''),
      );
    }
  }
  const mine = results.delivery?.summaries.find((row) => row.peer === 'idstitch');
  const best = results.delivery ? importBatch(results.delivery) : undefined;
  if (failed.has('delivery-cpu') && mine && best) {
    const us = (row: DeliverySummary) => (row.cpuSecondsPer100k.median / 100_000) * 1e6;
    const tracker = results.delivery?.summaries.find((row) => row.peer === 'idstitch-discard');
    const goal = us(best) / DELIVERY_CPU_GOAL;
    notes.push(
      `Delivery: idstitch spends ${fmt(us(mine), 1)} µs of CPU per event against ${fmt(us(best), 1)} µs for ${best.peer}; ` +
        `the target leaves ${fmt(goal, 1)} µs. ` +
        (tracker
          ? `The tracker alone (\`forUser().track()\` into a sink that discards: sanitising, validating, stamping, a UUIDv4 ` +
            `$insert_id) takes ${fmt(us(tracker), 1)} µs of it; MixpanelSink's share (serialising each event once with ` +
            `JSON.stringify, queueing, gzip at level 1 on the libuv pool, the requests, and the garbage collection of ` +
            `messages that wait for their batch) is ${fmt(us(mine) - us(tracker), 1)} µs. `
          : '') +
        `${best.peer} serialises the caller's objects as they are (no validation, no $insert_id, no gzip: ` +
        `${fmt(best.bytesPer100k.median / mine.bytesPer100k.median, 0)}× the bytes).`,
    );
  }
  if ((failed.has('stall-memory') || failed.has('stall-memory-growth')) && results.stall) {
    const stall = results.stall;
    const first = stall.runs[0];
    const nodeOnly = first?.rssNodeOnlyMb ?? Number.NaN;
    const before = first?.rssBeforeMb ?? Number.NaN;
    notes.push(
      `Memory under stall: of the ${fmt(stall.limitMb)} MiB, Node itself takes ${fmt(nodeOnly, 1)} MiB and loading ` +
        `idstitch's modules another ${fmt(before - nodeOnly, 1)} MiB (57 ES module files; the same code bundled into one ` +
        'file loads in about 3 MiB) before the first event. The queue stays within its budget (at most ' +
        `${fmt(Math.max(...stall.runs.map((run) => run.maxQueuedMb)), 1)} MiB of JSON of ${fmt(stall.budgetMb)} MiB, ` +
        `${fmt(Math.max(...stall.runs.map((run) => run.maxQueued)))} messages); on the heap it costs ` +
        `${fmt((first?.retainedHeapMb ?? Number.NaN) - (first?.discard.retainedHeapMb ?? Number.NaN), 1)} MiB (heap after a ` +
        `full GC, ${fmt(first?.retainedHeapMb ?? Number.NaN, 1)} MiB, minus the discarding run's): the JSON strings, ` +
        "and for each message its queue entry and $insert_id. The rest of the peak is V8's sizing of a heap that allocates fast: " +
        `the same loop into a sink that discards every event peaks at ${fmt(stall.discardPeakRssMb.median, 1)} MiB ` +
        `(its young generation grows to two semi-spaces of up to 16 MiB), and the stalled run ` +
        `${fmt(stall.overDiscardMb.median, 1)} MiB above that: the queued messages, promoted to the old generation, ` +
        'raise the size at which V8 next collects it, so garbage promoted meanwhile lives longer.',
    );
  }
  return notes;
}

const verdict = (pass: boolean | undefined) =>
  pass === undefined ? 'not run' : pass ? '**pass**' : '**FAIL**';

function targetsTable(targets: Target[]): string {
  return [
    '| target | goal | measured (median of rounds) | result |',
    '| --- | --- | --- | --- |',
    ...targets.map(
      (target) =>
        `| ${target.description} | ${target.goal} | ${target.measured}${target.detail ? `<br>${target.detail}` : ''} | ${verdict(target.pass)} |`,
    ),
  ].join('\n');
}

function ms(summary: Summary): string {
  return cell(summary, summary.median < 10 ? 1 : 0);
}

function overheadTables(result: OverheadResult): string {
  const parts: string[] = [];
  const frameworks = [...new Set(result.summaries.map((row) => row.framework))];
  for (const framework of frameworks) {
    const rows = result.summaries.filter((row) => row.framework === framework);
    parts.push(
      `### ${FRAMEWORK_LABELS[framework]}`,
      '',
      '| variant | req/s | × bare | mean latency ms | × bare | p50 ms | p50 × bare | p99 ms | p99 × bare | CPU µs/req | added CPU µs/req | of which user | loop delay p99 ms | × hand-written |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((row: OverheadSummary) => {
        const label = VARIANT_LABELS[framework][row.variant] ?? row.variant;
        const bare = row.variant === 'bare';
        return [
          label,
          cell(row.reqPerSec),
          bare ? '1' : `${fmt(row.reqPerSecRatio.median, 3)} (${spreadCell(row.reqPerSecRatio)})`,
          cell(row.meanMs, 2),
          bare ? '1' : fmt(row.meanRatio.median, 2),
          ms(row.p50Ms),
          bare ? '1' : fmt(row.p50Ratio.median, 2),
          ms(row.p99Ms),
          bare ? '1' : fmt(row.p99Ratio.median, 2),
          cell(row.cpuUsPerRequest, 1),
          bare ? '0' : cell(row.addedCpuUs, 1),
          bare ? `(${fmt(row.userUsPerRequest.median, 1)} user)` : fmt(row.addedUserUs.median, 1),
          cell(row.loopDelayP99Ms, 1),
          row.vsHandwritten ? `${fmt(row.vsHandwritten.median, 2)}×` : '',
        ]
          .join(' | ')
          .replace(/^/, '| ')
          .concat(' |');
      }),
      '',
    );
    const errors = rows.reduce((sum, row) => sum + row.errors, 0);
    if (errors > 0) parts.push(`Load errors, timeouts or non-200 answers: ${errors} in all.`, '');
  }
  const delivering = result.summaries.filter((row) => /^(idstitch|handwritten)(-tls)?$/.test(row.variant));
  if (delivering.length > 0) {
    const totals = delivering.map((row) => {
      const runs = result.runs.filter(
        (run) => run.framework === row.framework && run.variant === row.variant,
      );
      const events = runs.reduce((sum, run) => sum + run.deliveredEvents, 0);
      const requests = runs.reduce((sum, run) => sum + run.ingestRequests, 0);
      return `${row.framework}/${row.variant} ${fmt(events)} events in ${fmt(requests)} requests`;
    });
    parts.push(
      'Every idstitch and hand-written request tracked one event, and the SDKs report every one acknowledged by the ' +
        `ingest server before each server closed (all rounds, warm-up included): ${totals.join('; ')}.`,
      '',
    );
  }
  return parts.join('\n');
}

function deliveryTable(result: DeliveryResult): string {
  const mine = result.summaries.find((row) => row.peer === 'idstitch') as DeliverySummary;
  const x = (value: number, base: number, digits = 2) => `${fmt(ratio(value, base), digits)}×`;
  return [
    '| SDK | events/s | × idstitch | CPU s per 100 000 events | × idstitch | events per CPU s | × idstitch | bytes on the wire per 100 000 events | × idstitch | requests per 100 000 | peak RSS MiB | × idstitch | delivered |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.summaries.map(
      (row) =>
        `${[
          `| ${PEER_LABELS[row.peer as Peer]}`,
          cell(row.eventsPerSecond),
          x(row.eventsPerSecond.median, mine.eventsPerSecond.median),
          cell(row.cpuSecondsPer100k, 2),
          x(row.cpuSecondsPer100k.median, mine.cpuSecondsPer100k.median),
          cell(row.eventsPerCpuSecond),
          x(row.eventsPerCpuSecond.median, mine.eventsPerCpuSecond.median),
          `${fmt(row.bytesPer100k.median / 2 ** 20, 2)} MiB (${spreadCell(row.bytesPer100k)})`,
          x(row.bytesPer100k.median, mine.bytesPer100k.median),
          fmt(row.requestsPer100k.median),
          cell(row.peakRssMb),
          x(row.peakRssMb.median, mine.peakRssMb.median),
          row.peer === 'idstitch-discard' ? 'n/a (discards)' : `${fmt(row.receivedRatio.median * 100, 1)} %`,
        ].join(' | ')} |`,
    ),
    ...(result.skipped ?? []).map(
      (skip) => `| ${PEER_LABELS[skip.peer]} | skipped: ${skip.reason} |${' |'.repeat(11)}`,
    ),
  ].join('\n');
}

function stallTable(result: StallResult): string {
  const rows = result.runs.map(
    (run) =>
      `${[
        `| ${run.round + 1}`,
        fmt(run.events),
        `${fmt(run.trackMs)} ms (${fmt(run.eventsPerSecond)} events/s)`,
        run.budgetMessages >= 100_000_000
          ? `${fmt(run.budgetMb)} MiB`
          : `${fmt(run.budgetMessages)} messages / ${fmt(run.budgetMb)} MiB`,
        `${fmt(run.maxQueued)} messages / ${fmt(run.maxQueuedMb, 1)} MiB`,
        fmt(run.droppedOverflow),
        fmt(run.droppedShutdown),
        fmt(run.rssBeforeMb, 1),
        fmt(run.peakRssMb, 1),
        fmt(run.discard.peakRssMb, 1),
        fmt(run.maxHeapUsedMb, 1),
        fmt(run.retainedHeapMb, 1),
        fmt(run.ingestRequests),
      ].join(' | ')} |`,
  );
  const spoolRows = result.runs.map((run) =>
    'skipped' in run.spool
      ? `| ${run.round + 1} | skipped: ${run.spool.skipped} |${' |'.repeat(7)}`
      : `${[
          `| ${run.round + 1}`,
          `${fmt(run.spool.trackMs)} ms`,
          `${fmt(run.spool.maxQueued)} messages / ${fmt(run.spool.maxQueuedMb, 1)} MiB`,
          fmt(run.spool.droppedWhileTracking),
          fmt(run.spool.spooledRecords),
          `${fmt(run.spool.diskBytes / 2 ** 20, 1)} MiB`,
          fmt(run.spool.rssBeforeMb, 1),
          fmt(run.spool.peakRssMb, 1),
          fmt(run.spool.maxHeapUsedMb, 1),
        ].join(' | ')} |`,
  );
  return [
    '| round | events tracked | time to track them | queue budget | most of it used | dropped: queue full | dropped: at close | RSS before, MiB | peak RSS, MiB | peak RSS, same loop into a discarding sink | peak heap used, MiB | heap after full GC, MiB | requests the server held |',
    '| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    'The same stalled run with the disk spool on (issue 11): what does not fit the in-memory budget goes to disk.',
    '',
    '| round | time to track them | most of the memory budget used | dropped while tracking | records spooled | spool files on disk | RSS before, MiB | peak RSS, MiB | peak heap used, MiB |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...spoolRows,
  ].join('\n');
}

function microTable(result: MicroResult): string {
  const base = result.summaries[0];
  return [
    '| path | mean ns per request | spread over rounds | p99 ns | added over no idstitch |',
    '| --- | ---: | --- | ---: | ---: |',
    ...result.summaries.map(
      (row) =>
        `| ${row.name} | ${fmt(row.meanNs.median)} | ${cell(row.meanNs)} | ${fmt(row.p99Ns.median)} | ${
          base && row !== base ? `${fmt((row.meanNs.median - base.meanNs.median) / 1000, 2)} µs` : ''
        } |`,
    ),
  ].join('\n');
}

/** The "Targets" section: the table and which were missed. */
export function targetsSection(targets: Target[]): string {
  const failed = targets.filter((target) => target.pass === false);
  return [
    '## Targets',
    '',
    targetsTable(targets),
    '',
    failed.length === 0
      ? 'Every target that was measured passed.'
      : `Missed: ${failed.map((target) => target.id).join(', ')}. Profiles of where the time goes are under [Profiles of the missed targets](#profiles-of-the-missed-targets).`,
  ].join('\n');
}

/** Section 0, the instruction counts. */
export function instructionsSection(result: InstructionResult): string {
  return [
    '## 0. Instructions per request (callgrind)',
    '',
    instructionTables(result),
    '',
    breakdownTables(result),
  ].join('\n');
}

export function renderMarkdown(results: BenchResults): string {
  const { config, machine } = results;
  const failed = results.targets.filter((target) => target.pass === false);
  const idle = results.load.every((snapshot) => snapshot.others.length === 0);
  const loadLines = results.load.map(
    (snapshot) =>
      `- ${snapshot.at}: load average ${snapshot.load1.toFixed(2)}; ${
        snapshot.others.length
          ? `other processes busy: ${snapshot.others.join(', ')}`
          : 'no other process used ≥ 5 % of a core'
      }`,
  );
  const sections: string[] = [
    '# idstitch benchmarks against its peers',
    '',
    `Written by \`pnpm bench${config.quick ? ' --quick' : ''}\` on ${machine.date.slice(0, 10)} in ${fmt(results.durationSeconds)} s. ` +
      `Every figure is from this one run on one machine; ratios compare against baselines measured in the same run. ` +
      `Medians over rounds, with the range (min–max) or the half-range as ±%. Method and how to read the tables: ` +
      '[bench/README.md](README.md).',
    '',
    targetsSection(results.targets),
    '',
    '## Machine and run',
    '',
    `- ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GiB; ${machine.platform}, kernel ${machine.kernel}`,
    `- Node ${machine.node} (V8 ${machine.v8}); idstitch at commit ${machine.commit ?? 'unknown'}${machine.dirty?.length ? ` plus uncommitted changes to ${machine.dirty.join(', ')}` : ''}, measured from its built \`dist/\` (what npm users run)`,
    `- ${Object.entries(machine.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}`,
    `- CPU layout: ${
      results.pinning.enabled
        ? `delivery, stall and micro: the process under test pinned to core ${results.pinning.measured} (its gzip threads included), the ingest server to core ${results.pinning.helpers} (\`taskset\`); overhead: not pinned, so that autocannon can saturate even the lightest bare server`
        : 'no pinning (taskset missing, one core, or BENCH_PIN=0): every process shares every core'
    }`,
    `- Rounds: overhead ${config.overhead.rounds} (warm-up ${config.overhead.warmupSeconds} s + ${config.overhead.durationSeconds} s of load, ${config.overhead.connections} connections, keep-alive), ` +
      `delivery ${config.delivery.rounds} × ${fmt(config.delivery.events)} events, stall ${config.stall.rounds} × ${fmt(config.stall.events)} events, micro ${config.micro.rounds} × ${config.micro.timeMs} ms per task`,
    `- Other load on the machine (sampled before and after each scenario): ${idle ? 'none seen: the machine was otherwise idle' : 'see below; figures taken while other processes were busy are less reliable'}`,
    ...loadLines.map((line) => `  ${line}`),
    '',
  ];
  if (results.instructions) sections.push(instructionsSection(results.instructions), '');
  if (results.overhead) {
    sections.push(
      '## 1. Request overhead',
      '',
      `Hello-world route, ${results.overhead.connections} connections with keep-alive from autocannon in its own process, ` +
        'loopback. Each request carries a signed idstitch device cookie already linked to the signed-in user ' +
        "(`x-user-id`, standing in for the app's auth), so identity is steady: no `Set-Cookie`, no identify event. " +
        'Latency percentiles come from autocannon at a resolution of 1 ms (a ratio to a 0 ms p50 is n/a); its mean is ' +
        "exact. CPU per request is the server process's `process.cpuUsage()` over the measured window divided by the " +
        'requests it answered (gzip and sockets of the sink included); "added" is against bare in the same round.',
      '',
      overheadTables(results.overhead),
    );
  }
  if (results.delivery) {
    const best = bestPeer(results.delivery);
    sections.push(
      `## 2. Delivery of ${fmt(results.delivery.events)} events`,
      '',
      'Each SDK in a process of its own, tracking the same event (10 properties, 1000 users) as fast as it accepts ' +
        'them (chunks of 250, yielding to the event loop between chunks), then flushing; clock and CPU stop when the ' +
        "SDK reports everything acknowledged. Bytes on the wire are what the loopback ingest server's sockets read " +
        '(request lines, headers and bodies as sent). Ratios are to idstitch (below 1 is less than idstitch). ' +
        `The "best peer" of the targets is the one with the most events per CPU second among those that delivered ≥ ${MIN_DELIVERED_FOR_TARGETS * 100} %: ${best?.peer ?? 'none'}.`,
      '',
      deliveryTable(results.delivery),
      '',
    );
  }
  if (results.stall) {
    sections.push(
      '## 3. Memory under stall',
      '',
      'The ingest server reads every request and never answers. The process tracks the events through ' +
        '`forUser().track()` into a `MixpanelSink` with its default budgets; the baseline of the same round runs the ' +
        "same loop into a sink that discards everything. Peak RSS is the kernel's high-water mark (`maxRSS`).",
      '',
      stallTable(results.stall),
      '',
    );
  }
  if (results.micro) {
    sections.push(
      '## 4. Identity hot path (micro-benchmark)',
      '',
      "tinybench, one request's work without HTTP: the returning visitor of scenario 1 (signed cookie linked to the " +
        'user, one `track()` with two properties) into a sink that discards, against the same request with no ' +
        'idstitch. Each round in a fresh process.',
      '',
      microTable(results.micro),
      '',
    );
  }
  const whyInstructions = instructionMissSection(results.instructions, results.targets);
  if (whyInstructions) sections.push(whyInstructions, '');
  const why = missNotes(results);
  if (why.length > 0)
    sections.push('## Why the missed targets were missed', '', ...why.map((note) => `- ${note}`), '');
  if (results.profiles.length > 0) {
    sections.push('## Profiles of the missed targets', '');
    for (const profile of results.profiles) sections.push(profile.markdown, '');
  } else if (failed.length > 0) {
    sections.push(
      '## Profiles of the missed targets',
      '',
      'Not profiled in this run (`--quick` or `--no-profile`); run `pnpm bench` for the profiles.',
      '',
    );
  }
  if (results.notes.length > 0)
    sections.push('## Notes', '', ...results.notes.map((note) => `- ${note}`), '');
  return `${sections
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
