/**
 * The process that runs under callgrind: `target.js <warmup> <n> <pairs> <case> [+ <case> …]`, each case
 * `app <framework> <variant> <visitor> <ingestPort>`, `floor <part>` or `client`, measured one after the other in
 * the same process (start-up is paid once). It drives its own work in-process (requests through
 * {@link LoopbackClient}, no load generator): a warm-up, then `pairs` times a phase of `n` units and a phase of
 * `2n` units, each phase ending with the SDK flushed and a full garbage collection. At each phase boundary it
 * calls `os.getPriority()` on the main thread, then awaits `fs.promises.statfs('/')`, which runs on the libuv
 * pool thread (one: `UV_THREADPOOL_SIZE=1`). callgrind is told to dump before both (`--dump-before=getpriority
 * --dump-before=statfs*`); a dump so triggered writes the counters of the thread that triggered it only, so the
 * main thread is cut at getpriority and the pool thread (gzip) at statfs, with nothing running in between but the
 * boundary itself, the same in every phase. Per thread, dump 1 is start-up (or the previous case's close) and
 * warm-up, then one dump per phase. The runner takes (2n phase − n phase) / n per pair (pairs.ts), so
 * start-up, the warm-up and any fixed cost of a phase (the boundary itself, a final flush's round trip) cancel
 * out.
 */
import { statfs } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { type FloorPart, floorChecksum, floorWork } from './floor.js';
import { LoopbackClient } from './loopback.js';
import { unitsPerPhase } from './pairs.js';
import { type Visitor, visitorRequestHeaders } from './visitors.js';

/**
 * The phase boundary callgrind dumps at, once on each measured thread; nothing else in these processes calls
 * getpriority(2) or statfs(2). Taken after the phase's work is flushed: neither thread is in the middle of any.
 */
async function mark(): Promise<void> {
  os.getPriority();
  await statfs('/');
}

/**
 * Under `--instr-atstart=no` (BENCH_INSTR_TOGGLE=1) callgrind instruments nothing until told to: the start-up and
 * the warm-up run at valgrind's uninstrumented speed (about 5 times faster than under callgrind's
 * instrumentation). The target asks the runner on stdout and waits for its `ok` on stdin; the runner switches
 * instrumentation with `callgrind_control -i on|off <pid>` (vgdb) in between, so it is on before the warm-up's
 * boundary and every measured phase, and nothing runs while it switches.
 */
const toggling = process.env.BENCH_INSTR_TOGGLE === '1';
const answers = toggling ? createInterface({ input: process.stdin })[Symbol.asyncIterator]() : undefined;
let instrumented = !toggling;

async function instrument(on: boolean): Promise<void> {
  if (!answers || instrumented === on) return;
  process.stdout.write(`${JSON.stringify({ type: 'instrument', on })}\n`);
  // Keep running while the runner switches: valgrind's gdbserver, which callgrind_control reaches through vgdb,
  // polls between basic blocks; a process asleep in epoll_wait could only be woken with ptrace, which containers
  // often forbid. What runs meanwhile lands in the warm-up's dump or the next case's first one, both left out.
  let answered = false;
  const spin = () => {
    if (!answered) setImmediate(spin);
  };
  spin();
  const answer = await answers.next();
  answered = true;
  if (answer.done || answer.value !== 'ok') {
    throw new Error(
      `the runner did not switch instrumentation ${on ? 'on' : 'off'}: ${String(answer.value)}`,
    );
  }
  instrumented = on;
}

interface Work {
  run(count: number): Promise<void>;
  settle(): Promise<void>;
  report(): Record<string, unknown>;
  close(): Promise<void>;
}

async function appWork(args: string[]): Promise<Work> {
  const [framework, variant, visitor, ingestPort] = args as [string, string, Visitor, string];
  const { buildApp } = await import('./apps.js');
  const app = await buildApp(framework, variant, Number(ingestPort));
  // Between phases the client is idle for as long as the flush, the GC and callgrind's dump take (seconds under
  // callgrind): the default keep-alive timeout (5 s) would close its connection there.
  app.server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const client = await LoopbackClient.open(port, visitorRequestHeaders(visitor));
  return {
    run: (count) => client.run(count),
    settle: () => app.flush(),
    report: () => ({ ...client.stats }),
    async close() {
      client.close();
      const sdk = await app.close();
      app.server.close();
      process.stderr.write(`${JSON.stringify(sdk)}\n`);
    },
  };
}

/** A server that answers from the raw socket: what remains is the loopback client and Node's socket layer. */
async function clientWork(): Promise<Work> {
  const response = 'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world';
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', () => socket.write(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const client = await LoopbackClient.open(port, visitorRequestHeaders('returning'));
  return {
    run: (count) => client.run(count),
    settle: async () => {},
    report: () => ({ ...client.stats }),
    async close() {
      client.close();
      server.close();
    },
  };
}

function floorUnits(part: FloorPart): Work {
  const work = floorWork(part);
  let i = 0;
  return {
    async run(count) {
      for (let end = i + count; i < end; i++) work.unit(i);
    },
    settle: () => work.settle(),
    report: () => ({ units: i, checksum: floorChecksum }),
    close: async () => {},
  };
}

/** Collects the phase's garbage inside the phase, so that no phase pays for another's (node --expose-gc). */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function measureOne(
  spec: string[],
  warmup: number,
  n: number,
  pairs: number,
): Promise<Record<string, unknown>> {
  const [kind, ...rest] = spec;
  // Only the first case of a process runs its start-up and warm-up uninstrumented: switching instrumentation off
  // and on again left callgrind's next dump with a summary: that had wrapped below zero (2^64 − 358M against
  // totals: 2.7M, valgrind 3.19), so a later case (the floor parts after the client) warms up instrumented.
  const work =
    kind === 'app'
      ? await appWork(rest)
      : kind === 'client'
        ? await clientWork()
        : floorUnits(rest[0] as FloorPart);
  let started = performance.now();
  const units = unitsPerPhase(kind as string, n);
  const counts = [warmup, ...Array.from({ length: pairs }, () => [units, 2 * units]).flat()];
  for (const [phase, count] of counts.entries()) {
    // The warm-up flushes every n units: each measured phase ends with one flush (gzip, fetch), whose code would
    // otherwise have run once or twice before the first of them. A measured phase flushes once, at its end, so
    // that what a flush costs cancels out of the pair.
    const chunk = phase === 0 ? units : count;
    for (let done = 0; done < count; done += chunk) {
      await work.run(Math.min(chunk, count - done));
      await work.settle();
    }
    collect();
    // After the warm-up (phase 0) everything is instrumented: its boundary's dump holds next to nothing.
    if (phase === 0) await instrument(true);
    await mark();
    // Wall time per phase, for sizing the phases (stderr: its tail is in the runner's message when a case fails).
    process.stderr.write(`phase ${count}: ${Math.round(performance.now() - started)} ms\n`);
    started = performance.now();
  }
  const report = work.report();
  await work.close();
  return report;
}

/** `target.js <warmup> <n> <pairs> <case> [+ <case> …]`: the cases one after the other, 1 + 2 × pairs dumps each. */
async function main(): Promise<void> {
  const [warmup, n, pairs, ...rest] = process.argv.slice(2);
  const specs: string[][] = [[]];
  for (const word of rest) {
    if (word === '+') specs.push([]);
    else specs[specs.length - 1]?.push(word);
  }
  const reports = [];
  for (const spec of specs) reports.push(await measureOne(spec, Number(warmup), Number(n), Number(pairs)));
  process.stdout.write(`${JSON.stringify({ type: 'report', reports })}\n`);
  process.stdin.destroy();
  setTimeout(() => process.exit(0), 20).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
