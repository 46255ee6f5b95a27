import { execFileSync } from 'node:child_process';
import {
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IdstitchError } from '../../errors.js';
import { openDiskSpool } from './disk-spool.js';
import { encodeRecord } from './format.js';
import { LOCK_REFRESH_MS } from './lock.js';
import type { DamagedRecord, LostRecord, ResolvedSpoolOptions, Spool, SpoolHooks } from './types.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) {
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  }
});

function hooks() {
  const errors: IdstitchError[] = [];
  const lost: LostRecord[] = [];
  const damaged: DamagedRecord[] = [];
  let synced = 0;
  const h: SpoolHooks = {
    report: (error) => errors.push(error),
    synced: (seq) => {
      synced = Math.max(synced, seq);
    },
    written: () => {},
    lost: (records) => lost.push(...records),
    damaged: (records) => damaged.push(...records),
  };
  return { h, errors, lost, damaged, synced: () => synced };
}

function options(dir: string, extra: Partial<ResolvedSpoolOptions> = {}): ResolvedSpoolOptions {
  return {
    dir,
    fsync: 'per-batch',
    fsyncIntervalMs: 1000,
    maxBytes: 64 * 1024 * 1024,
    segmentBytes: 4096,
    ...extra,
  };
}

const json = (i: number) =>
  JSON.stringify({ event: 'E', properties: { $insert_id: `id-${i}`, time: 1_700_000_000_000 + i } });

async function fill(spool: Spool, count: number, spilled = true): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i += 1) ids.push(spool.append(i + 1, 'import', json(i), spilled) as number);
  return ids;
}

async function readAll(spool: Spool): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const records = await spool.read(100, 1 << 20);
    if (records.length === 0) return out;
    out.push(...records.map((r) => r.json));
  }
}

describe('disk spool', () => {
  it('hands back what a previous process left, byte for byte, except what it settled', async () => {
    const dir = tempDir();
    const first = hooks();
    const spool = await openDiskSpool(options(dir), first.h);
    const ids = await fill(spool, 50);
    spool.ack(ids.slice(0, 20));
    await spool.close();
    expect(first.synced()).toBe(50);

    const second = hooks();
    const again = await openDiskSpool(options(dir), second.h);
    expect(again.recovered).toBe(30);
    expect(await readAll(again)).toEqual(Array.from({ length: 30 }, (_, i) => json(i + 20)));
    expect(second.errors).toEqual([]);
    await again.close();
  });

  it('reads back within a byte limit smaller than the backlog, a few records at a time, to the end', {
    timeout: 10_000,
  }, async () => {
    // Before: once a record did not fit, read() went round again from the same offset, for ever.
    const dir = tempDir();
    const spool = await openDiskSpool(options(dir, { segmentBytes: 1 << 20 }), hooks().h);
    await fill(spool, 200);
    await new Promise((done) => setTimeout(done, 20));
    const out: string[] = [];
    for (let round = 0; round < 1000 && out.length < 200; round += 1) {
      const records = await spool.read(10_000, 300);
      expect(records.length).toBeGreaterThan(0);
      out.push(...records.map((r) => r.json));
    }
    expect(out).toEqual(Array.from({ length: 200 }, (_, i) => json(i)));
    await spool.close();
  });

  it('never uses a handle after closing it, and leaves no file behind: reads, acks and close() interleaved as the sink does', async () => {
    // Before: segments were collected (their ledger closed) from read() and from a second write loop
    // that close() started beside the scheduled one, while a write loop still fsync'd that ledger
    // (EBADF, reported as spool_failed). The sink's restart test hit it on every run.
    for (let run = 0; run < 5; run += 1) {
      const dir = tempDir();
      const first = await openDiskSpool(options(dir, { segmentBytes: 512 }), hooks().h);
      await fill(first, 200);
      await first.close();
      const seen = hooks();
      const spool = await openDiskSpool(options(dir, { segmentBytes: 512 }), seen.h);
      for (;;) {
        const records = await spool.read(7, 1 << 20);
        if (records.length === 0) break;
        spool.ack(records.map((r) => r.id));
      }
      await spool.close();
      expect(seen.errors).toEqual([]);
      expect(readdirSync(dir).filter((name) => name !== 'LOCK')).toEqual([]);
    }
  });

  it('skips and reports a segment with flipped bytes; the records around them are still delivered', async () => {
    const dir = tempDir();
    const spool = await openDiskSpool(options(dir, { segmentBytes: 1 << 20 }), hooks().h);
    await fill(spool, 20);
    await spool.close();
    const [segment] = readdirSync(dir).filter((name) => name.endsWith('.seg'));
    const path = join(dir, segment as string);
    const bytes = readFileSync(path);
    const recordBytes = Math.floor(bytes.length / 20);
    bytes.writeUInt8((bytes.readUInt8(recordBytes * 5 + 40) ^ 0xff) & 0xff, recordBytes * 5 + 40); // inside record 6's JSON
    writeFileSync(path, bytes);

    const seen = hooks();
    const again = await openDiskSpool(options(dir), seen.h);
    const read = await readAll(again);
    expect(read).toHaveLength(19);
    expect(read).not.toContain(json(5));
    expect(seen.errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    await again.close();
  });

  it('reports damage found while reading back what this process wrote, and delivers the records around it', async () => {
    const dir = tempDir();
    const seen = hooks();
    const spool = await openDiskSpool(options(dir, { segmentBytes: 1 << 20 }), seen.h);
    await fill(spool, 10);
    await vi.waitFor(() => expect(spool.stats().written).toBe(10));
    const path = join(dir, readdirSync(dir).find((name) => name.endsWith('.seg')) as string);
    const bytes = readFileSync(path);
    const at = bytes.indexOf('id-4');
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x20, at);
    writeFileSync(path, bytes);
    expect(await readAll(spool)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9].map(json));
    expect(seen.errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    expect(seen.errors[0]?.message).toContain('found while reading it back');
    // The damaged record is handed to the sink as damaged, not left in the backlog for ever.
    expect(seen.damaged).toEqual([{ seq: 5, endpoint: 'import' }]);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('a segment deleted under the spool is reported and read past: the records before and after it come back', async () => {
    // Before: once the first segment's records were read (and taken out of the backlog), reading the
    // deleted one threw and read() threw them away too; then every read threw, and nothing written later
    // was ever read back.
    const dir = tempDir();
    const seen = hooks();
    const spool = await openDiskSpool(options(dir), seen.h);
    await fill(spool, 100);
    await vi.waitFor(() => expect(spool.stats().written).toBe(100));
    expect(spool.stats().segments).toBeGreaterThan(2);
    rmSync(join(dir, '0000000002.seg'));
    const read = await readAll(spool);
    expect(seen.errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    expect(seen.errors[0]?.message).toContain('0000000002.seg cannot be read back (it was deleted)');
    expect(read[0]).toBe(json(0));
    expect(read.at(-1)).toBe(json(99));
    expect(seen.damaged.length).toBeGreaterThan(0);
    expect(read.length + seen.damaged.length).toBe(100);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('refuses, while reading back, a segment file another user put in place of its own', async (context) => {
    if (process.geteuid?.() !== 0) return context.skip('needs root to give the file to another user');
    const dir = tempDir();
    const seen = hooks();
    const spool = await openDiskSpool(options(dir), seen.h);
    await fill(spool, 100);
    await vi.waitFor(() => expect(spool.stats().written).toBe(100));
    // What a directory swapped after the start-up check holds: the next segment, with records of theirs.
    const planted = join(dir, '0000000002.seg');
    const merge = JSON.stringify({ event: '$merge', properties: { $distinct_ids: ['victim', 'attacker'] } });
    rmSync(planted);
    writeFileSync(planted, encodeRecord(0, 1, 'import', merge));
    chownSync(planted, 4242, 4242);
    const read = await readAll(spool);
    expect(read).not.toContain(merge);
    expect(seen.errors.map((e) => e.message).join('\n')).toContain('0000000002.seg cannot be read back');
    expect(read.at(-1)).toBe(json(99));
    await spool.close();
  });

  it('a segment cut short on disk is reported once and read past; reading never spins on its end', {
    timeout: 10_000,
  }, async () => {
    // Before: read() re-read the missing end of the segment for ever and never returned.
    const dir = tempDir();
    const seen = hooks();
    const spool = await openDiskSpool(options(dir), seen.h);
    await fill(spool, 100);
    await vi.waitFor(() => expect(spool.stats().written).toBe(100));
    const second = join(dir, '0000000002.seg');
    truncateSync(second, statSync(second).size - 50);
    const read = await readAll(spool);
    expect(seen.errors.map((e) => e.code)).toEqual(['spool_corrupt']);
    expect(seen.errors[0]?.message).toContain('short of what was written to it');
    // Everything but the records in the lost end: those before it, and every later segment's.
    expect(read.length).toBeGreaterThan(90);
    expect(read.at(-1)).toBe(json(99));
    expect(seen.damaged.length).toBeGreaterThan(0);
    expect(read.length + seen.damaged.length).toBe(100);
    expect(spool.backlog).toBe(0);
    await spool.close();
  });

  it('keeps spool IDs exact past two million segments: acks settle the records they name', async () => {
    const dir = tempDir();
    // A long-lived process numbers segments on and on (2^21 segments of 4 KiB is 8 GiB written); a spool
    // ID of segment × 2^32 + index was no longer an exact integer past segment 2^21.
    const records = [0, 1, 2, 3].map((i) => encodeRecord(i, 0, 'import', json(i)));
    writeFileSync(join(dir, '0009999999.seg'), Buffer.concat(records));
    const first = await openDiskSpool(options(dir), hooks().h);
    const read = await first.read(10, 1 << 20);
    expect(read.map((r) => r.json)).toEqual([0, 1, 2, 3].map(json));
    expect(new Set(read.map((r) => r.id)).size).toBe(4);
    first.ack([read[1]!.id, read[3]!.id]);
    await first.close();
    const again = await openDiskSpool(options(dir), hooks().h);
    expect(await readAll(again)).toEqual([0, 2].map(json));
    await again.close();
  });

  it('detects a torn tail by its checksum, reports it, and keeps every whole record', async () => {
    const dir = tempDir();
    const spool = await openDiskSpool(options(dir, { segmentBytes: 1 << 20 }), hooks().h);
    await fill(spool, 10);
    await spool.close();
    const [segment] = readdirSync(dir).filter((name) => name.endsWith('.seg'));
    const path = join(dir, segment as string);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 7));

    const seen = hooks();
    const again = await openDiskSpool(options(dir), seen.h);
    expect(await readAll(again)).toEqual(Array.from({ length: 9 }, (_, i) => json(i)));
    expect(seen.errors.map((e) => e.code)).toEqual(['spool_torn_tail']);
    await again.close();
  });

  it('refuses a second user of one directory, naming the PID; a stale lock is taken over', async () => {
    const dir = tempDir();
    const spool = await openDiskSpool(options(dir), hooks().h);
    await expect(openDiskSpool(options(dir), hooks().h)).rejects.toThrow(`in use by process ${process.pid}`);
    await spool.close();
    writeFileSync(join(dir, 'LOCK'), '999999 not-this-host-but-dead\n');
    rmSync(join(dir, 'LOCK'));
    writeFileSync(join(dir, 'LOCK'), '2147483646\n'); // no such process
    const again = await openDiskSpool(options(dir), hooks().h);
    await again.close();
  });

  it('stops appending once another process took its LOCK over (it went LOCK_STALE_MS without a refresh)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const dir = tempDir();
      const seen = hooks();
      const spool = await openDiskSpool(options(dir), seen.h);
      expect(spool.append(1, 'import', json(1), true)).toBeTypeOf('number');
      // What a process on another host writes when it takes a LOCK it found stale.
      rmSync(join(dir, 'LOCK'));
      writeFileSync(join(dir, 'LOCK'), '4242 other-host.example\n');
      vi.advanceTimersByTime(LOCK_REFRESH_MS);
      await vi.waitFor(() => expect(seen.errors.map((e) => e.code)).toEqual(['spool_locked']));
      // New messages go to the caller's memory policy instead of segments the new holder may number alike.
      expect(spool.append(2, 'import', json(2), true)).toBeUndefined();
      await spool.close();
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe('4242 other-host.example\n');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a full disk is reported and the spilled records come back to the caller, never a crash', async (context) => {
    const dir = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=700', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      context.skip(); // needs root (mount); the reason is in the test name
    }
    const seen = hooks();
    const spool = await openDiskSpool(options(dir, { segmentBytes: 1 << 20 }), seen.h);
    const big = 'x'.repeat(4000);
    for (let i = 0; i < 40; i += 1) spool.append(i + 1, 'import', JSON.stringify({ big, i }), true);
    await spool.close();
    expect(seen.errors.map((e) => e.code)).toContain('spool_failed');
    const kept = await openDiskSpool(options(dir), hooks().h);
    // Everything is either on disk (whole) or handed back: nothing vanished, nothing twice.
    expect(kept.recovered + seen.lost.length).toBe(40);
    await kept.close();
  });

  it('a read-only directory fails to open with the cause, for the sink to report', async (context) => {
    const dir = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k,mode=700', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      context.skip();
    }
    await expect(openDiskSpool(options(dir), hooks().h)).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('measures the loss window of each fsync policy: records written but not yet fsync’d', async () => {
    const exposed: Record<string, number> = {};
    for (const fsync of ['per-batch', 'interval', 'never'] as const) {
      const dir = tempDir();
      // The moment the batch holding the 100th record is done (written, and fsync'd if the policy says so);
      // not a sleep, which a busy machine outlasted.
      let allWritten!: () => void;
      const written = new Promise<void>((resolve) => {
        allWritten = resolve;
      });
      let spool: Spool | undefined;
      const h = { ...hooks().h, written: () => (spool?.stats().written === 100 ? allWritten() : undefined) };
      spool = await openDiskSpool(options(dir, { fsync, fsyncIntervalMs: 60_000 }), h);
      await fill(spool, 100);
      await written;
      const stats = spool.stats();
      expect(stats.written).toBe(100);
      exposed[fsync] = stats.written - stats.synced;
      await spool.close();
      expect(spool.stats().synced).toBe(100);
    }
    // per-batch: nothing written is left unsynced; interval and never: everything since the last sync.
    expect(exposed).toEqual({ 'per-batch': 0, interval: 100, never: 100 });
  });
});
