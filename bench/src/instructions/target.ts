/**
 * The process that runs under callgrind: `target.js <warmup> <n> <case> [+ <case> …]`, each case
 * `app <framework> <variant> <visitor> <ingestPort>`, `floor <part>` or `client`, measured one after the other in
 * the same process (start-up is paid once). It drives its own work in-process
 * (requests through {@link LoopbackClient}, no load generator) in three phases: a warm-up, then `n` units,
 * then `2n` units, each phase ending with the SDK flushed and a full garbage collection. At each phase boundary it calls `os.getPriority()`,
 * which callgrind is told to dump before (`--dump-before=getpriority`): dump 1 is start-up (or the previous case's
 * close) and warm-up, dump 2 the `n` units, dump 3 the `2n` units. The runner takes (dump 3 − dump 2) / n, so start-up, the warm-up and any
 * fixed cost of a phase (the boundary itself, a final flush's round trip) cancel out.
 */
import { createServer } from 'node:net';
import os from 'node:os';
import { type FloorPart, floorChecksum, floorWork } from './floor.js';
import { LoopbackClient } from './loopback.js';
import { type Visitor, visitorRequestHeaders } from './visitors.js';

/** The phase boundary callgrind dumps at; nothing else in these processes calls getpriority(2). */
const mark = () => os.getPriority();

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

async function measureOne(spec: string[], warmup: number, n: number): Promise<Record<string, unknown>> {
  const [kind, ...rest] = spec;
  const work =
    kind === 'app'
      ? await appWork(rest)
      : kind === 'client'
        ? await clientWork()
        : floorUnits(rest[0] as FloorPart);
  await work.run(warmup);
  await work.settle();
  collect();
  mark();
  await work.run(n);
  await work.settle();
  collect();
  mark();
  await work.run(2 * n);
  await work.settle();
  collect();
  mark();
  const report = work.report();
  await work.close();
  return report;
}

/** `target.js <warmup> <n> <case> [+ <case> …]`: the cases one after the other, three dumps each. */
async function main(): Promise<void> {
  const [warmup, n, ...rest] = process.argv.slice(2);
  const specs: string[][] = [[]];
  for (const word of rest) {
    if (word === '+') specs.push([]);
    else specs[specs.length - 1]?.push(word);
  }
  const reports = [];
  for (const spec of specs) reports.push(await measureOne(spec, Number(warmup), Number(n)));
  process.stdout.write(`${JSON.stringify({ type: 'report', reports })}\n`);
  setTimeout(() => process.exit(0), 20).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
