/**
 * What the spool keeps in memory per record it holds on disk only. A stall spills millions of records: the
 * 1 000 000-event stall of the bench spilled 969 631, and a `Map` entry per record (index → offset, seq,
 * endpoint; about 100 bytes) took its heap from 44 to 135 MiB. The index must take a few bits per record,
 * count them (`stats().indexBytes`), and stay under its budget.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDiskSpool } from '../../packages/core/src/sinks/spool/disk-spool.js';
import { indexBudget } from '../../packages/core/src/sinks/spool/index-budget.js';
import type { Spool, SpoolHooks } from '../../packages/core/src/sinks/spool/types.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-index-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const RECORDS = 250_000;

/** The heap and the typed arrays' backing stores (outside the heap), after a full collection. */
function heapAfterGc(): number {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** Resolves once the spool wrote every record appended (the pending buffers are then released). */
function writtenAll(spool: Spool): Promise<void> {
  return new Promise((done, fail) => {
    const check = () => {
      if (spool.stats().written >= spool.stats().appended) done();
      else if (spool.stats().state !== 'ok') fail(new Error(`spool ${spool.stats().state}`));
      else setTimeout(check, 5);
    };
    check();
  });
}

it(`holds ${RECORDS} spilled records in a few bits each, counted in stats().indexBytes`, {
  timeout: 120_000,
}, async () => {
  const hooks: SpoolHooks = {
    report: () => {},
    synced: () => {},
    written: () => {},
    lost: () => {},
    damaged: () => {},
  };
  const maxBytes = 1024 * 1024 * 1024;
  const spool = await openDiskSpool(
    { dir, fsync: 'never', fsyncIntervalMs: 1000, maxBytes, segmentBytes: 8 * 1024 * 1024 },
    hooks,
  );
  const before = heapAfterGc();
  // Small events, mixed endpoints (as an app with profile updates writes them), appended in batches as a
  // stalled sink does: the I/O loop writes each batch between them.
  const endpoints = ['track', 'track', 'engage', 'import'] as const;
  for (let i = 0; i < RECORDS; i += 1) {
    const json = `{"event":"E","properties":{"$insert_id":"${i}","time":${1_700_000_000_000 + i}}}`;
    const id = spool.append(i + 1, endpoints[i % 4] as (typeof endpoints)[number], json, true, String(i));
    if (id === undefined) throw new Error(`record ${i} was refused`);
    if (i % 10_000 === 9_999) await writtenAll(spool);
  }
  await writtenAll(spool);
  const grown = heapAfterGc() - before;
  if (process.env.SPOOL_INDEX_REPORT)
    console.log({ grown, perRecord: grown / RECORDS, stats: spool.stats() });
  expect(spool.backlog).toBe(RECORDS);
  // The heap the spool holds per record (index, segments, everything): the Map took about 100 bytes.
  expect(grown / RECORDS, `${grown} bytes of heap for ${RECORDS} records`).toBeLessThan(16);
  const { indexBytes } = spool.stats();
  // 3 bits per record, twice that at most while an array has just doubled.
  expect(indexBytes).toBeGreaterThan(0);
  expect(indexBytes / RECORDS).toBeLessThanOrEqual(1);
  expect(indexBytes).toBeLessThanOrEqual(indexBudget(maxBytes));
  await spool.close();
});
