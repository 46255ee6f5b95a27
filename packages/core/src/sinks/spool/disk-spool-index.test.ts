/**
 * The disk spool's index of records held on disk only (`unread-index.ts`) as the spool uses it: damage
 * accounted by index ranges, its memory budget, and the `$insert_id` each record carries beside its JSON.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IdstitchError } from '../../errors.js';
import { openDiskSpool } from './disk-spool.js';
import { ACK_MAGIC, encodeLedger, encodeRecord, parseRecords } from './format.js';
import { indexBudget } from './index-budget.js';
import type { DamagedRecord, ResolvedSpoolOptions, SpooledRecord, SpoolHooks } from './types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setUp(extra: Partial<ResolvedSpoolOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-index-'));
  dirs.push(dir);
  const errors: IdstitchError[] = [];
  const damaged: DamagedRecord[] = [];
  const hooks: SpoolHooks = {
    report: (error) => errors.push(error),
    synced: () => {},
    written: () => {},
    lost: () => {},
    damaged: (records) => damaged.push(...records),
  };
  const options: ResolvedSpoolOptions = {
    dir,
    fsync: 'never',
    fsyncIntervalMs: 1000,
    maxBytes: 64 * 1024 * 1024,
    segmentBytes: 1 << 20,
    ...extra,
  };
  return { dir, errors, damaged, hooks, options };
}

const json = (i: number) =>
  JSON.stringify({ event: 'E', properties: { $insert_id: `id-${i}`, time: 1_700_000_000_000 + i } });

async function readAll(spool: { read(n: number, b: number): Promise<SpooledRecord[]> }) {
  const out: SpooledRecord[] = [];
  for (;;) {
    const records = await spool.read(100, 1 << 20);
    if (records.length === 0) return out;
    out.push(...records);
  }
}

describe('disk spool index', () => {
  it('a damaged last record of the segment still being written is dropped at once, not held in the backlog', async () => {
    const { dir, damaged, hooks, options } = setUp();
    const spool = await openDiskSpool(options, hooks);
    for (let i = 0; i < 10; i += 1) spool.append(i + 1, 'track', json(i), true, `id-${i}`);
    await vi.waitFor(() => expect(spool.stats().written).toBe(10));
    const path = join(dir, readdirSync(dir).find((name) => name.endsWith('.seg')) as string);
    const bytes = readFileSync(path);
    const at = bytes.lastIndexOf('"time"');
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x20, at);
    writeFileSync(path, bytes);
    const read = await readAll(spool);
    expect(read.map((r) => r.json)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map(json));
    // The segment is not sealed: only "every record written lies before the cursor" says record 9 is lost.
    expect(damaged).toEqual([{ seq: 10, endpoint: 'track' }]);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('damage found reading back a previous process’s segment drops exactly its unsettled records in it', async () => {
    const { dir, errors, damaged, hooks, options } = setUp();
    const records = Array.from({ length: 8 }, (_, i) =>
      encodeRecord(i, 0, i % 2 ? 'engage' : 'track', json(i)),
    );
    const path = join(dir, '0000000001.seg');
    writeFileSync(path, Buffer.concat(records));
    // The ledger settled 3 and 6.
    writeFileSync(join(dir, '0000000001.ack'), encodeLedger(ACK_MAGIC, [3, 6]));
    const spool = await openDiskSpool(options, hooks);
    expect(spool.recovered).toBe(6);
    // Then records 2-4 are damaged on disk: 2 and 4 (unsettled) are lost, 3 was settled already.
    const file = readFileSync(path);
    const from = records.slice(0, 2).reduce((sum, r) => sum + r.length, 0);
    const to = from + records.slice(2, 5).reduce((sum, r) => sum + r.length, 0);
    for (let at = from; at < to; at += 1) file.writeUInt8(file.readUInt8(at) ^ 0xff, at);
    writeFileSync(path, file);
    const read = await readAll(spool);
    expect(read.map((r) => r.json)).toEqual([0, 1, 5, 7].map(json));
    expect(damaged).toEqual([
      { seq: 0, endpoint: 'track' },
      { seq: 0, endpoint: 'track' },
    ]);
    expect(errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('a record numbered past what its segment can hold is skipped and reported, never sizing the index', async () => {
    const { dir, errors, hooks, options } = setUp();
    const records = [encodeRecord(0, 0, 'track', json(0)), encodeRecord(0xffff_fff0, 0, 'track', json(1))];
    records.push(encodeRecord(2, 0, 'track', json(2)));
    writeFileSync(join(dir, '0000000001.seg'), Buffer.concat(records));
    const spool = await openDiskSpool(options, hooks);
    expect(spool.recovered).toBe(2);
    expect(spool.stats().indexBytes).toBeLessThan(1024);
    expect(errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    expect(errors[0]?.message).toContain(`numbered ${0xffff_fff0}, more than the segment can hold`);
    expect((await readAll(spool)).map((r) => r.json)).toEqual([json(0), json(2)]);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('keeps its memory within maxBytes / 32: past it, spilled records are refused (spool_full), others taken', async () => {
    const maxBytes = 2 * 1024 * 1024;
    const { errors, hooks, options } = setUp({ maxBytes });
    const spool = await openDiskSpool(options, hooks);
    // A sequence that skips a number at every record (never seen in a sink: it would take a refused
    // message between every two) makes a run per record: 12 bytes each.
    let refusedAt = -1;
    for (let i = 0; i < 20_000; i += 1) {
      if (spool.append(2 * i + 1, 'track', json(i), true) === undefined) {
        refusedAt = i;
        break;
      }
    }
    expect(refusedAt).toBeGreaterThan(0);
    expect(spool.stats().indexBytes).toBeLessThanOrEqual(indexBudget(maxBytes));
    expect(spool.stats().bytes).toBeLessThan(maxBytes);
    expect(errors.map((e) => e.code)).toEqual(['spool_full']);
    expect(errors[0]?.message).toContain(`budget of ${indexBudget(maxBytes)} bytes of memory`);
    // Records kept in memory too (journaled, not spilled) need no index: still taken.
    expect(spool.append(2 * refusedAt + 1, 'track', json(refusedAt), false)).toBeTypeOf('number');
    expect(spool.backlog).toBe(refusedAt);
    await spool.close();
  });

  it('carries an event’s $insert_id beside its JSON; records without it (older ones) still read', async () => {
    const withId = encodeRecord(0, 1, 'import', json(0), 'id-0');
    const without = encodeRecord(1, 2, 'import', json(1));
    // Not short ASCII: not kept (parsing the JSON finds it exactly).
    const odd = encodeRecord(2, 3, 'import', json(2), 'ïd-2');
    // Not a string (a message that skipped validation): not kept either.
    const number = encodeRecord(3, 4, 'import', json(3), 42 as unknown as string);
    const { records, damage } = parseRecords(Buffer.concat([withId, without, odd, number]), 0, true);
    expect(damage).toEqual([]);
    expect(records.map((r) => [r.index, r.json, r.insertId])).toEqual([
      [0, json(0), 'id-0'],
      [1, json(1), undefined],
      [2, json(2), undefined],
      [3, json(3), undefined],
    ]);
    expect(withId.length).toBe(without.length + 1 + 'id-0'.length);

    const { hooks, options } = setUp();
    const spool = await openDiskSpool(options, hooks);
    spool.append(1, 'track', json(5), true, 'id-5');
    spool.append(2, 'engage', '{"$set":{}}', true);
    await vi.waitFor(() => expect(spool.stats().written).toBe(2));
    expect((await readAll(spool)).map((r) => r.insertId)).toEqual(['id-5', undefined]);
    await spool.close();
  });
});

describe('disk spool write buffer', () => {
  it('holds at most 16 MiB of records waiting for their write; past that, appends are refused and reported', async () => {
    const segmentBytes = 64 * 1024;
    const buffer = 16 * 1024 * 1024;
    const { errors, hooks, options } = setUp({ segmentBytes });
    const spool = await openDiskSpool(options, hooks);
    const big = (i: number) =>
      JSON.stringify({ event: 'E', properties: { $insert_id: `id-${i}`, pad: 'x'.repeat(1000) } });
    // One synchronous burst: the writer only runs on a later turn of the event loop.
    let accepted = 0;
    let refused = 0;
    const attempts = 20_000;
    for (let i = 0; i < attempts; i += 1) {
      if (spool.append(i + 1, 'track', big(i), true, `id-${i}`) === undefined) refused += 1;
      else accepted += 1;
    }
    expect(accepted * 1000).toBeGreaterThan(buffer * 0.9);
    expect(accepted * 1000).toBeLessThanOrEqual(buffer);
    expect(refused).toBe(attempts - accepted);
    expect(errors.filter((e) => e.code === 'spool_full' && /behind in writing/.test(e.message))).toHaveLength(
      1,
    );
    await vi.waitFor(() => expect(spool.stats().written).toBe(accepted));
    expect(spool.append(attempts + 1, 'track', big(attempts), true, 'id-last')).toBeTypeOf('number');
    await spool.close();
  });
});
