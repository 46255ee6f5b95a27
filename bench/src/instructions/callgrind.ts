/**
 * Reading callgrind's dumps. The target runs under `valgrind --tool=callgrind --separate-threads=yes
 * --dump-before=getpriority --dump-before=statfs* --callgrind-out-file=<base>`, which writes one file per dump
 * and thread, `<base>.<dump>-<thread>` (dumps numbered in the order they were taken, threads as valgrind numbers
 * them, 1 being the main thread), and at exit `<base>-<thread>` (ignored here: it holds the case's close).
 *
 * A dump triggered by `--dump-before` writes the counters of the thread that reached the function only. Which
 * threads are counted follows from that:
 * - the main thread (JavaScript, V8's compiler when it runs there, the sockets): thread 1, cut at `getpriority`;
 * - the libuv pool thread (gzip; one with `UV_THREADPOOL_SIZE=1`): the one thread whose dumps were triggered by
 *   `statfs`, which only a pool thread runs (`fs.promises.statfs`). No other thread calls it, so this rule needs
 *   no symbol names, and a run where two threads did (a pool of more than one) is refused.
 * V8's background threads (concurrent compilation, WebAssembly tier-up of fetch's llhttp) are left out: how much
 * of that work lands inside a phase depends on thread scheduling, not on the code under test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One dump file's header and totals. */
export interface CallgrindDump {
  /** Dump number (`part:`), in the order the dumps were taken. */
  part: number;
  /** valgrind's thread number (`thread:`); 1 is the main thread. */
  thread: number;
  /** What triggered the dump (`desc: Trigger:`), e.g. `--dump-before=statfs`. */
  trigger: string;
  /** Instructions executed (the `Ir` event) by this thread since its previous dump. */
  ir: number;
  /** The file it was read from (set by {@link readCallgrindDumps}). */
  file?: string;
}

/** Why a dump file was refused: the message names the file or the rule it broke. */
export class CallgrindFormatError extends Error {}

function header(text: string, name: string): string | undefined {
  const match = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(text);
  return match?.[1]?.trim();
}

/** The value of event `event` on a `summary:` or `totals:` line, in the order of the `events:` line. */
function eventValue(line: string | undefined, events: readonly string[], event: string): number | undefined {
  if (line === undefined) return undefined;
  const index = events.indexOf(event);
  const value = line.split(/\s+/)[index];
  // A trailing event with no cost may be left off the line: it counts 0.
  return value === undefined ? 0 : Number(value);
}

/**
 * Parses one callgrind out file (format version 1). The count is the `totals:` line (written at the end of the
 * file), or `summary:` (the header) when there is no `totals:`; when both are present they must agree.
 */
export function parseCallgrindDump(text: string, name = 'callgrind file'): CallgrindDump {
  if (!/^# callgrind format/.test(text) && !/^(version|creator|events):/m.test(text)) {
    throw new CallgrindFormatError(`${name}: not a callgrind out file`);
  }
  const events = header(text, 'events')?.split(/\s+/);
  if (!events?.includes('Ir')) throw new CallgrindFormatError(`${name}: no Ir event on its events: line`);
  const summary = eventValue(header(text, 'summary'), events, 'Ir');
  const totals = eventValue(header(text, 'totals'), events, 'Ir');
  const ir = totals ?? summary;
  if (ir === undefined || !Number.isSafeInteger(ir) || ir < 0) {
    throw new CallgrindFormatError(`${name}: no summary: or totals: line with a count of Ir`);
  }
  if (summary !== undefined && totals !== undefined && summary !== totals) {
    throw new CallgrindFormatError(`${name}: summary: ${summary} and totals: ${totals} disagree`);
  }
  const part = Number(header(text, 'part') ?? Number.NaN);
  const thread = Number(header(text, 'thread') ?? 1);
  if (!Number.isInteger(part) || !Number.isInteger(thread)) {
    throw new CallgrindFormatError(`${name}: no part: or thread: number (was it a per-dump file?)`);
  }
  const trigger = /^desc:\s*Trigger:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '';
  return { part, thread, trigger, ir };
}

/** Every per-dump file `<base>.<dump>-<thread>` in `dir`, parsed, in the order the dumps were taken. */
export function readCallgrindDumps(dir: string, base = 'callgrind.out'): CallgrindDump[] {
  const pattern = new RegExp(`^${base.replace(/\./g, '\\.')}\\.(\\d+)-(\\d+)$`);
  const dumps: CallgrindDump[] = [];
  for (const name of readdirSync(dir)) {
    const match = pattern.exec(name);
    if (!match) continue;
    const dump = parseCallgrindDump(readFileSync(join(dir, name), 'utf8'), name);
    if (dump.part !== Number(match[1]) || dump.thread !== Number(match[2])) {
      throw new CallgrindFormatError(
        `${name}: its header says part ${dump.part}, thread ${dump.thread}, not what its name says`,
      );
    }
    dumps.push({ ...dump, file: join(dir, name) });
  }
  return dumps.sort((a, b) => a.part - b.part);
}

/** The thread numbers counted, and each phase's count (main + pool thread), in phase order. */
export interface ThreadPhases {
  main: number;
  /** The libuv pool thread: the one whose dumps statfs triggered. */
  pool: number;
  /** Instructions per phase: the main thread's getpriority dumps plus the pool thread's statfs dumps. */
  phases: number[];
  mainPhases: number[];
  poolPhases: number[];
  /** The dumps behind {@link mainPhases} and {@link poolPhases}, in the same order. */
  mainDumps: CallgrindDump[];
  poolDumps: CallgrindDump[];
}

const MAIN_THREAD = 1;

/**
 * Sums the main thread's and the pool thread's counts phase by phase: the k-th getpriority dump of thread 1 with
 * the k-th statfs dump of the pool thread (each phase boundary takes one of each, in that order).
 */
export function threadPhases(dumps: readonly CallgrindDump[]): ThreadPhases {
  const main = dumps.filter((dump) => dump.thread === MAIN_THREAD && /getpriority/.test(dump.trigger));
  const statfs = dumps.filter((dump) => /statfs/.test(dump.trigger));
  const poolThreads = [...new Set(statfs.map((dump) => dump.thread))];
  if (poolThreads.length > 1) {
    throw new CallgrindFormatError(
      `statfs dumps came from threads ${poolThreads.join(', ')}: more than one pool thread (set UV_THREADPOOL_SIZE=1)`,
    );
  }
  if (poolThreads[0] === MAIN_THREAD) {
    throw new CallgrindFormatError('the main thread ran statfs: it must run on the libuv pool thread');
  }
  const pool = poolThreads[0];
  if (pool === undefined) {
    throw new CallgrindFormatError(
      'no dump was triggered by statfs: the pool thread was not cut (--dump-before=statfs*)',
    );
  }
  if (statfs.length !== main.length) {
    throw new CallgrindFormatError(
      `${main.length} getpriority dumps of the main thread but ${statfs.length} statfs dumps of thread ${pool}: the phases do not pair up`,
    );
  }
  const mainPhases = main.map((dump) => dump.ir);
  const poolPhases = statfs.map((dump) => dump.ir);
  return {
    main: MAIN_THREAD,
    pool,
    phases: mainPhases.map((ir, index) => ir + (poolPhases[index] as number)),
    mainPhases,
    poolPhases,
    mainDumps: main,
    poolDumps: statfs,
  };
}
