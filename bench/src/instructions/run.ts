/**
 * Instructions per request, counted by callgrind (user space): the main thread and the one libuv pool thread
 * (gzip), not V8's background threads (callgrind.ts says why). Each app case runs in a process of its own under
 * `valgrind --tool=callgrind` (the client and the floor parts share one); each process drives itself (target.ts)
 * and callgrind dumps at its phase boundaries, so the figure of a case is the median over its pairs of
 * (instructions of 2n units − instructions of n units) / n (pairs.ts): start-up, warm-up and any fixed cost per
 * phase cancel out. Hardware
 * counters (`perf stat -e instructions`) are not used: they are missing in most VMs and CI runners, and they
 * would count the load generator's and the kernel's work differently on each machine.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchConfig } from '../config.js';
import { Ingest } from '../ingest/client.js';
import { DIST } from '../lib/child.js';
import { log } from '../lib/log.js';
import { median, type Summary, summarize } from '../lib/stats.js';
import type { Framework } from '../overhead/variants.js';
import { addCosts, type CaseBreakdown, caseBreakdown, readDumpCosts } from './breakdown.js';
import { type CallgrindDump, readCallgrindDumps, threadPhases } from './callgrind.js';
import { FLOOR_PARTS, FLOOR_SUM, type FloorPart } from './floor.js';
import { pairCounts, phasesPerCase, splitCases, unitsPerPhase } from './pairs.js';
import { VISITORS, type Visitor } from './visitors.js';

/** One measured process: an app with a visitor kind, a part of the floor, or the loopback client alone. */
export type InstructionCase =
  | { kind: 'app'; framework: Framework; variant: string; visitor: Visitor }
  | { kind: 'floor'; part: FloorPart }
  | { kind: 'client' };

export interface InstructionRun {
  key: string;
  round: number;
  /** Instructions per unit (request, or one floor part): the median of {@link pairs}. */
  perUnit: number;
  /** Instructions per unit of each n/2n pair, main + pool thread. */
  pairs: number[];
  /** The pool thread's share of each pair (gzip, the phase marks' statfs). */
  poolPairs: number[];
  /** Instructions of each phase (warm-up with start-up, then n, 2n, n, 2n …), main + pool thread. */
  phases: number[];
  report: Record<string, unknown>;
  seconds: number;
  /** Where its instructions per unit go (breakdown.ts): app cases and the client only. */
  breakdown?: CaseBreakdown;
  /** Wall time of each phase of the process, ms (target.ts writes them), for sizing the phases. */
  phaseMs?: number[];
}

export interface InstructionRow {
  key: string;
  case: InstructionCase;
  perUnit: Summary;
}

export interface InstructionResult {
  tool: string;
  warmup: number;
  n: number;
  /** n/2n pairs per case and round. */
  pairs: number;
  /** Node's flags under callgrind. */
  nodeFlags: string[];
  rounds: number;
  seconds: number;
  runs: InstructionRun[];
  rows: InstructionRow[];
  /** Sum of the floor parts ({@link FLOOR_SUM}), median. */
  floor: number;
  /** When and on which commit it was counted (filled in by the runner). */
  measured?: { date: string; commit: string | undefined; dirty: string[] | undefined };
  /** Why the scenario did not run (no valgrind), when it did not. */
  skipped?: string;
  /** Cases whose process failed (no figure for them), with the first line of the reason. */
  failures?: string[];
}

export function caseKey(c: InstructionCase): string {
  if (c.kind === 'app') return `${c.framework}/${c.variant}/${c.visitor}`;
  if (c.kind === 'floor') return `floor/${c.part}`;
  return 'client';
}

/**
 * The cases of a run, in table order: what issue 12's targets and the peers' comparison need, and no more (each
 * app case costs one to five minutes of callgrind). Per framework: bare (it serves the same bytes to both kinds of
 * visitor: counted once, as a returning visitor), idstitch for a returning and a new visitor, and the
 * hand-written recipe for a returning visitor; on Express, posthog-node and Segment for a returning visitor too
 * (the targets compare what each adds for a returning visitor). The quick run (CI) keeps the hand-written recipe
 * and the peers on Express only. Fastify has no target: measured only when asked for (`--frameworks`), bare and
 * idstitch.
 */
export function instructionCases(frameworks: readonly Framework[], quick: boolean): InstructionCase[] {
  const cases: InstructionCase[] = [{ kind: 'client' }];
  for (const part of FLOOR_PARTS) cases.push({ kind: 'floor', part });
  for (const framework of frameworks) {
    if (quick && framework === 'fastify') continue;
    cases.push({ kind: 'app', framework, variant: 'bare', visitor: 'returning' });
    for (const visitor of VISITORS) cases.push({ kind: 'app', framework, variant: 'idstitch', visitor });
    if (framework === 'fastify' || (quick && framework !== 'express')) continue;
    const peers = framework === 'express' && !quick ? ['handwritten', 'posthog', 'segment'] : ['handwritten'];
    for (const variant of peers) cases.push({ kind: 'app', framework, variant, visitor: 'returning' });
  }
  return cases;
}

function valgrindVersion(): string | undefined {
  try {
    return execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Node's flags under callgrind. `--single-threaded-gc`: the GC's work on the main thread, where it is counted,
 * instead of helper threads whose share of it would vary with scheduling. `--no-liftoff`: WebAssembly (fetch's
 * llhttp) compiled once by TurboFan, not by Liftoff and then again on a tier-up whose timing varies.
 * `--predictable-gc-schedule`: a fixed heap growing factor and no memory reducer, whose timers and allocation-rate
 * estimates otherwise move GCs in or out of a phase with the wall clock (callgrind runs 50× slower on a busy
 * machine). TurboFan stays concurrent: compiling on the main thread (`--no-concurrent-recompilation`) raised the
 * count and its spread.
 */
export const NODE_FLAGS = [
  '--expose-gc',
  '--single-threaded-gc',
  '--no-liftoff',
  '--predictable-gc-schedule',
];

function caseArgs(c: InstructionCase, ingestPort: number): string[] {
  if (c.kind === 'app') return ['app', c.framework, c.variant, c.visitor, String(ingestPort)];
  if (c.kind === 'floor') return ['floor', c.part];
  return ['client'];
}

/** One process under callgrind measuring `cases` one after the other (start-up paid once). */
async function measureGroup(
  cases: readonly InstructionCase[],
  round: number,
  warmup: number,
  n: number,
  pairs: number,
  ingestPort: number,
  instrumentWarmup: boolean,
): Promise<InstructionRun[]> {
  const dir = mkdtempSync(join(os.tmpdir(), 'idstitch-callgrind-'));
  const out = join(dir, 'callgrind.out');
  const args: string[] = [];
  for (const c of cases) args.push(...(args.length ? ['+'] : []), ...caseArgs(c, ingestPort));
  const started = performance.now();
  const phaseMs: number[] = [];
  try {
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve, reject) => {
      const child = spawn(
        'valgrind',
        [
          '--tool=callgrind',
          // Start-up and warm-up uninstrumented (target.ts switches it on through the runner): about half the wall time.
          ...(instrumentWarmup ? [] : ['--instr-atstart=no']),
          // One file per dump and thread; the main thread is cut at getpriority, the pool thread at statfs.
          '--separate-threads=yes',
          '--dump-before=getpriority',
          '--dump-before=statfs*',
          `--callgrind-out-file=${out}`,
          '--dump-line=no',
          '--compress-strings=yes',
          process.execPath,
          ...NODE_FLAGS,
          join(DIST, 'instructions', 'target.js'),
          String(warmup),
          String(n),
          String(pairs),
          ...args,
        ],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
          // One pool thread: gzip and the phase marks' statfs run on it, and it is the one counted beside main.
          env: {
            ...process.env,
            NODE_ENV: 'production',
            BENCH_INSTRUCTIONS: '1',
            UV_THREADPOOL_SIZE: '1',
            BENCH_INSTR_TOGGLE: instrumentWarmup ? '0' : '1',
          },
        },
      );
      let stdout = '';
      let stderr = '';
      let pending = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        pending += chunk;
        for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          const request = instrumentRequest(line);
          if (request === undefined || child.pid === undefined) continue;
          switchInstrumentation(child.pid, request)
            .then(() => child.stdin?.write('ok\n'))
            .catch((error: unknown) => {
              stderr += `\n${error instanceof Error ? error.message : String(error)}`;
              child.kill('SIGKILL');
            });
        }
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        for (const match of chunk.matchAll(/^phase \d+: (\d+) ms$/gm)) phaseMs.push(Number(match[1]));
        stderr = (stderr + chunk).slice(-6000);
      });
      child.on('error', reject);
      child.on('exit', (exitCode) => resolve({ code: exitCode, stdout, stderr }));
    });
    const label = cases.map(caseKey).join(' + ');
    const tail = stderr.split('\n').slice(-15).join('\n');
    if (code !== 0) throw new Error(`${label}: exit code ${code}\n${tail}`);
    let byCase: number[][];
    let poolByCase: number[][];
    let mainDumps: CallgrindDump[][];
    let poolDumps: CallgrindDump[][];
    try {
      const threads = threadPhases(readCallgrindDumps(dir));
      byCase = splitCases(threads.phases, cases.length, pairs);
      poolByCase = splitCases(threads.poolPhases, cases.length, pairs);
      mainDumps = splitCases(threads.mainDumps, cases.length, pairs);
      poolDumps = splitCases(threads.poolDumps, cases.length, pairs);
    } catch (error) {
      throw new Error(
        `${label}: ${error instanceof Error ? error.message : String(error)} (expected ${phasesPerCase(pairs)} phases per case)\n${tail}`,
      );
    }
    const line = stdout.split('\n').find((text) => text.startsWith('{"type":"report"'));
    const reports = line ? (JSON.parse(line) as { reports: Array<Record<string, unknown>> }).reports : [];
    const seconds = (performance.now() - started) / 1000;
    const requests = warmup + 3 * n * pairs;
    return cases.map((c, index) => {
      const phases = byCase[index] as number[];
      const report = reports[index] ?? {};
      if (c.kind === 'app' && (report.non200 !== 0 || report.requests !== requests)) {
        throw new Error(`${caseKey(c)}: ${JSON.stringify(report)}: expected ${requests} answers of 200`);
      }
      const units = unitsPerPhase(c.kind, n);
      const counts = pairCounts(phases, units, pairs);
      let breakdown: CaseBreakdown | undefined;
      if (c.kind !== 'floor') {
        try {
          // The measured phases only (the warm-up's dump holds start-up and is left out), main + pool thread.
          const pool = poolDumps[index] as CallgrindDump[];
          const costs = (mainDumps[index] as CallgrindDump[])
            .slice(1)
            .map((dump, phase) =>
              addCosts(readDumpCosts(dump.file ?? ''), readDumpCosts(pool[phase + 1]?.file ?? '')),
            );
          breakdown = caseBreakdown(costs, units, pairs);
        } catch (error) {
          log(
            `instructions ${caseKey(c)}: no breakdown (${error instanceof Error ? error.message : String(error)})`,
          );
        }
      }
      return {
        breakdown,
        phaseMs,
        key: caseKey(c),
        round,
        perUnit: median(counts),
        pairs: counts,
        poolPairs: pairCounts(poolByCase[index] as number[], units, pairs),
        phases,
        report,
        seconds,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `on` or `off` when a line of the target's stdout asks for instrumentation to be switched (target.ts). */
export function instrumentRequest(line: string): 'on' | 'off' | undefined {
  if (!line.startsWith('{"type":"instrument"')) return undefined;
  const message = JSON.parse(line) as { on?: unknown };
  return message.on === true ? 'on' : 'off';
}

/** `callgrind_control -i on|off <pid>`, through vgdb; fails unless callgrind answered OK. */
function switchInstrumentation(pid: number, state: 'on' | 'off'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('callgrind_control', ['-i', state, String(pid)], { timeout: 60_000 }, (error, stdout) => {
      if (error) reject(new Error(`callgrind_control -i ${state} ${pid}: ${error.message}`));
      else if (!/\bOK\b/.test(stdout))
        reject(new Error(`callgrind_control -i ${state} ${pid}: ${stdout.trim()}`));
      else resolve();
    });
  });
}

/** Runs `jobs` with at most `limit` at a time, in order of the list. */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await (jobs[index] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

/**
 * @param only case keys to keep (`--cases express/idstitch/returning,client`), for measuring one case; all when
 * undefined.
 */
export async function runInstructions(
  config: BenchConfig,
  frameworks: readonly Framework[],
  only?: readonly string[],
): Promise<InstructionResult> {
  const { rounds, warmup, n, pairs, instrumentWarmup } = config.instructions;
  const tool = valgrindVersion();
  const empty = {
    warmup,
    n,
    pairs,
    nodeFlags: NODE_FLAGS,
    rounds,
    seconds: 0,
    runs: [],
    rows: [],
    floor: Number.NaN,
  };
  if (!tool)
    throw new Error(
      'valgrind is not installed: the instruction counts need callgrind (apt-get install valgrind)',
    );
  const started = performance.now();
  const cases = instructionCases(frameworks, config.quick).filter(
    (c) => only === undefined || only.includes(caseKey(c)),
  );
  if (cases.length === 0) throw new Error(`--cases: no case is called ${only?.join(' or ')}`);
  // Idle connections kept for 10 minutes: one connection per SDK for the whole process (ingest/server.ts says why).
  const ingest = await Ingest.start({ lean: true, keepAliveMs: 600_000 });
  try {
    // callgrind runs a process on one thread at a time: one process per core. Each app case runs in a process of
    // its own: after other cases in the same process, Express's idstitch case gave pairs of 1 072k–1 153k
    // (median 1 125k), alone 1 040k–1 058k in two processes (medians 1 043k and 1 055k).
    const processes = Math.max(1, Math.min(os.availableParallelism(), 4));
    // Every case in a process of its own: with start-up and warm-up uninstrumented, a process costs little more
    // than its measured phases (and switching instrumentation off and on again inside one process broke
    // callgrind's next dump: target.ts). The costlier cases first (idstitch and the peers' SDKs, then bare, then
    // the client and the floor parts), so that the two processes at a time end close together.
    const cost = (c: InstructionCase) => (c.kind !== 'app' ? 2 : c.variant === 'bare' ? 1 : 0);
    const groups = [...cases].sort((a, b) => cost(a) - cost(b)).map((c) => [c]);
    const jobs: Array<() => Promise<InstructionRun[]>> = [];
    const failures: string[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const group of groups) {
        jobs.push(async () => {
          let runs: InstructionRun[];
          try {
            runs = await measureGroup(group, round, warmup, n, pairs, ingest.port, instrumentWarmup);
          } catch (error) {
            // One case failing does not throw away the others' counts (nor leave them running unattended).
            const message = error instanceof Error ? error.message : String(error);
            log(`instructions ${group.map(caseKey).join(' + ')} round ${round}: FAILED: ${message}`);
            failures.push(`${group.map(caseKey).join(' + ')} (round ${round}): ${message.split('\n')[0]}`);
            return [];
          }
          for (const run of runs) {
            log(
              `instructions ${run.key} round ${round}: ${Math.round(run.perUnit)} per unit (pairs ${run.pairs.map(Math.round).join(', ')}; process ${run.seconds.toFixed(0)} s, phases ${(run.phaseMs ?? []).map((ms) => (ms / 1000).toFixed(0)).join(' ')} s)`,
            );
          }
          return runs;
        });
      }
    }
    const runs = (await pool(jobs, processes)).flat();
    const rows = cases.map((c) => ({
      key: caseKey(c),
      case: c,
      perUnit: summarize(runs.filter((run) => run.key === caseKey(c)).map((run) => run.perUnit)),
    }));
    const floor = FLOOR_SUM.reduce(
      (sum, part) => sum + (rows.find((row) => row.key === `floor/${part}`)?.perUnit.median ?? Number.NaN),
      0,
    );
    if (runs.length === 0) throw new Error(`every case failed: ${failures.join('; ')}`);
    return { ...empty, tool, runs, rows, floor, failures, seconds: (performance.now() - started) / 1000 };
  } finally {
    await ingest.close();
  }
}
