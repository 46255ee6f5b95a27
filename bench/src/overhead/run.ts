import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BenchConfig } from '../config.js';
import { Ingest } from '../ingest/client.js';
import { returningVisitorHeaders } from '../instructions/visitors.js';
import { Child, DIST } from '../lib/child.js';
import { log } from '../lib/log.js';
import { type Summary, summarize } from '../lib/stats.js';
import { loopbackCertificate } from '../lib/tls.js';
import { DIAGNOSTIC_VARIANTS, FRAMEWORKS, type Framework, VARIANTS, type Variant } from './variants.js';

const require = createRequire(import.meta.url);
const AUTOCANNON = require.resolve('autocannon/autocannon.js');

export interface LoadResult {
  reqPerSec: number;
  total: number;
  /** Mean latency: autocannon's percentiles have a resolution of 1 ms, its mean does not. */
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export interface OverheadRun extends LoadResult {
  framework: Framework;
  variant: Variant;
  round: number;
  serverRequests: number;
  cpuUsPerRequest: number;
  /** The user-mode part of it (JavaScript, V8, gzip); the rest is the kernel's (sockets, wake-ups). */
  userUsPerRequest: number;
  loopDelayP99Ms: number;
  /** Events the SDK reports delivered (acknowledged by the ingest server), warm-up included, by its close. */
  deliveredEvents: number;
  ingestRequests: number;
  ingestBytes: number;
  sdk: Record<string, unknown>;
  peakRssMb: number;
}

export interface OverheadSummary {
  framework: Framework;
  variant: Variant;
  reqPerSec: Summary;
  meanMs: Summary;
  p50Ms: Summary;
  p99Ms: Summary;
  cpuUsPerRequest: Summary;
  userUsPerRequest: Summary;
  loopDelayP99Ms: Summary;
  /** Per-round ratios to the bare framework of the same round. */
  reqPerSecRatio: Summary;
  meanRatio: Summary;
  p50Ratio: Summary;
  p99Ratio: Summary;
  addedCpuUs: Summary;
  addedUserUs: Summary;
  /** Per-round ratio of this variant's req/s to the hand-written variant's (idstitch variants only). */
  vsHandwritten: Summary | undefined;
  errors: number;
}

export interface OverheadResult {
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  rounds: number;
  runs: OverheadRun[];
  summaries: OverheadSummary[];
}

/** The headers of a signed-in, returning visitor: a signed device cookie already linked to the user. */
export const visitorHeaders = returningVisitorHeaders;

/** Runs autocannon in a process of its own and returns its JSON summary. */
export function autocannon(
  url: string,
  connections: number,
  seconds: number,
  headers: Record<string, string>,
): Promise<LoadResult> {
  const args = [AUTOCANNON, '-c', String(connections), '-d', String(seconds), '-j'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}:${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err = (err + chunk).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}: ${err}`));
      try {
        const json = JSON.parse(out) as {
          requests: { average: number; total: number };
          latency: { mean: number; p50: number; p99: number };
          errors: number;
          timeouts: number;
          non2xx: number;
        };
        resolve({
          reqPerSec: json.requests.average,
          total: json.requests.total,
          meanMs: json.latency.mean,
          p50Ms: json.latency.p50,
          p99Ms: json.latency.p99,
          errors: json.errors,
          timeouts: json.timeouts,
          non2xx: json.non2xx,
        });
      } catch (error) {
        reject(new Error(`autocannon printed no JSON (${String(error)}): ${out.slice(0, 500)} ${err}`));
      }
    });
  });
}

export interface ServerHandle {
  child: Child;
  ingest: Ingest;
  url: string;
}

export async function startServer(
  framework: Framework,
  variant: Variant,
  execArgv: string[] = [],
): Promise<ServerHandle> {
  const tls = variant.endsWith('-tls') ? loopbackCertificate(TLS_DIR) : undefined;
  if (variant.endsWith('-tls') && !tls)
    throw new Error('the -tls variants need the openssl CLI for a certificate');
  const ingest = await Ingest.start({ lean: true, tlsDir: tls ? TLS_DIR : undefined });
  // Not pinned: on two cores, pinning would leave autocannon a single core shared with the ingest server, and
  // a light framework's bare server would then wait for its load instead of being saturated by it.
  const child = new Child(
    'overhead/server.js',
    [framework, variant, String(ingest.port)],
    execArgv,
    undefined,
    tls ? { BENCH_INGEST_TLS: '1', NODE_EXTRA_CA_CERTS: tls.cert } : {},
  );
  try {
    const ready = await child.waitFor('ready', 60_000);
    return { child, ingest, url: `http://127.0.0.1:${ready.port as number}/` };
  } catch (error) {
    child.kill();
    await ingest.close();
    throw error;
  }
}

export async function stopServer(
  handle: ServerHandle,
): Promise<{ sdk: Record<string, unknown>; peakRss: number }> {
  try {
    const closed = await handle.child.request({ type: 'close' }, 'closed', 60_000);
    await handle.child.exit(10_000);
    return { sdk: closed.sdk as Record<string, unknown>, peakRss: closed.peakRss as number };
  } finally {
    handle.child.kill();
  }
}

export async function measureOnce(
  framework: Framework,
  variant: Variant,
  round: number,
  config: BenchConfig['overhead'],
  headers: Record<string, string>,
): Promise<OverheadRun> {
  const handle = await startServer(framework, variant);
  try {
    await autocannon(handle.url, config.connections, config.warmupSeconds, headers);
    const before = await handle.child.request({ type: 'mark' }, 'mark');
    const load = await autocannon(handle.url, config.connections, config.durationSeconds, headers);
    const after = await handle.child.request({ type: 'mark' }, 'mark');
    const { sdk, peakRss } = await stopServer(handle);
    const ingest = await handle.ingest.stats();
    const serverRequests = (after.requests as number) - (before.requests as number);
    return {
      framework,
      variant,
      round,
      ...load,
      non2xx: load.non2xx + ((after.non200 as number) - (before.non200 as number)),
      serverRequests,
      cpuUsPerRequest: ((after.cpuUs as number) - (before.cpuUs as number)) / Math.max(1, serverRequests),
      userUsPerRequest: ((after.userUs as number) - (before.userUs as number)) / Math.max(1, serverRequests),
      loopDelayP99Ms: after.loopDelayP99Ms as number,
      deliveredEvents:
        typeof sdk.delivered === 'number'
          ? sdk.delivered
          : typeof sdk.sent === 'number'
            ? sdk.sent - ((sdk.failed as number) ?? 0)
            : 0,
      ingestRequests: ingest.requests,
      ingestBytes: ingest.bytesIn,
      sdk,
      peakRssMb: peakRss / 2 ** 20,
    };
  } finally {
    handle.child.kill();
    await handle.ingest.close();
  }
}

const TLS_DIR = join(DIST, '..', 'results', 'tls');

/** The variants of a framework; the diagnostic ones (middleware alone, null sink, TLS) only with `diagnostics`. */
export function variantsFor(framework: Framework, diagnostics: boolean): readonly Variant[] {
  const extra = diagnostics ? (DIAGNOSTIC_VARIANTS[framework] ?? []) : [];
  const tls = extra.some((variant) => variant.endsWith('-tls')) && loopbackCertificate(TLS_DIR) !== undefined;
  return [...VARIANTS[framework], ...extra.filter((variant) => tls || !variant.endsWith('-tls'))];
}

function summarizeFramework(framework: Framework, runs: OverheadRun[]): OverheadSummary[] {
  const variants = [...new Set(runs.map((run) => run.variant))];
  const rounds = [...new Set(runs.map((run) => run.round))];
  const find = (variant: Variant, round: number) =>
    runs.find((run) => run.variant === variant && run.round === round);
  return variants.map((variant) => {
    const mine = runs.filter((run) => run.variant === variant);
    const perRound = (pick: (run: OverheadRun, bare: OverheadRun) => number) =>
      summarize(
        rounds.flatMap((round) => {
          const run = find(variant, round);
          const bare = find('bare', round);
          return run && bare ? [pick(run, bare)] : [];
        }),
      );
    const hand = variant === 'idstitch' || variant === 'request-scope' || variant === 'idstitch-tls';
    const handwritten: Variant = variant === 'idstitch-tls' ? 'handwritten-tls' : 'handwritten';
    return {
      framework,
      variant,
      reqPerSec: summarize(mine.map((run) => run.reqPerSec)),
      meanMs: summarize(mine.map((run) => run.meanMs)),
      p50Ms: summarize(mine.map((run) => run.p50Ms)),
      p99Ms: summarize(mine.map((run) => run.p99Ms)),
      cpuUsPerRequest: summarize(mine.map((run) => run.cpuUsPerRequest)),
      userUsPerRequest: summarize(mine.map((run) => run.userUsPerRequest)),
      loopDelayP99Ms: summarize(mine.map((run) => run.loopDelayP99Ms)),
      reqPerSecRatio: perRound((run, bare) => run.reqPerSec / bare.reqPerSec),
      meanRatio: perRound((run, bare) => run.meanMs / bare.meanMs),
      p50Ratio: perRound((run, bare) => run.p50Ms / bare.p50Ms),
      p99Ratio: perRound((run, bare) => run.p99Ms / bare.p99Ms),
      addedCpuUs: perRound((run, bare) => run.cpuUsPerRequest - bare.cpuUsPerRequest),
      addedUserUs: perRound((run, bare) => run.userUsPerRequest - bare.userUsPerRequest),
      vsHandwritten: hand
        ? summarize(
            rounds.flatMap((round) => {
              const run = find(variant, round);
              const written = find(handwritten, round);
              return run && written ? [run.reqPerSec / written.reqPerSec] : [];
            }),
          )
        : undefined,
      errors: mine.reduce((sum, run) => sum + run.errors + run.timeouts + run.non2xx, 0),
    };
  });
}

export async function runOverhead(
  config: BenchConfig,
  frameworks: readonly Framework[] = FRAMEWORKS,
): Promise<OverheadResult> {
  const settings = config.overhead;
  const headers = visitorHeaders();
  const runs: OverheadRun[] = [];
  for (const framework of frameworks) {
    const variants = variantsFor(framework, settings.diagnostics);
    const mine: OverheadRun[] = [];
    try {
      for (let round = 0; round < settings.rounds; round++) {
        // Rotate the order each round, so that no variant always runs first or last.
        const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
        for (const variant of order) {
          const run = await measureOnce(framework, variant, round, settings, headers);
          log(
            `overhead r${round + 1} ${framework}/${variant}: ${Math.round(run.reqPerSec)} req/s, ` +
              `p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ${run.cpuUsPerRequest.toFixed(1)} µs CPU/req (user ${run.userUsPerRequest.toFixed(1)}), ` +
              `${run.deliveredEvents} events delivered` +
              (run.errors + run.non2xx + run.timeouts ? `, ${run.errors} errors ${run.non2xx} non-2xx` : ''),
          );
          mine.push(run);
        }
      }
    } finally {
      runs.push(...mine);
    }
  }
  const summaries = FRAMEWORKS.flatMap((framework) => {
    const mine = runs.filter((run) => run.framework === framework);
    return mine.length ? summarizeFramework(framework, mine) : [];
  });
  return {
    connections: settings.connections,
    warmupSeconds: settings.warmupSeconds,
    durationSeconds: settings.durationSeconds,
    rounds: settings.rounds,
    runs,
    summaries,
  };
}
