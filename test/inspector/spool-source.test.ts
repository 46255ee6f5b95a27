/**
 * The inspector's spool source reads what core's DiskSpool wrote, while the spool's owner holds its lock,
 * without writing anything, and survives the damage a crash or a bad disk leaves.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSpoolDirectory } from '@idstitch/core';
import { spoolSource } from '@idstitch/inspector';
import { afterEach, describe, expect, it } from 'vitest';
import { openSpool, spooledEvent } from './spool-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls a condition (fs events arrive when the kernel delivers them); fails after 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the watcher');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-inspect-spool-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const snapshotOf = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name)).toString('hex')]));

describe('spoolSource', () => {
  it('shows what a live DiskSpool holds, pending, without its lock and without writing, and drops what it settled', async () => {
    const dir = tempDir();
    const spool = await openSpool(dir, cleanups, 600); // small segments: the records span several files
    const ids: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      ids.push(
        spool.append(
          i + 1,
          'import',
          spooledEvent(i === 3 ? 'Signed In' : 'Viewed', i, i >= 3 ? 'U1' : undefined),
          true,
        ) as number,
      );
    }
    ids.push(
      spool.append(
        7,
        'engage',
        JSON.stringify({ $token: 't', $distinct_id: 'U1', $set: { plan: 'pro' } }),
        true,
      ) as number,
    );
    await spool.markSending([ids[6] as number]); // resolves once the write loop wrote the records before it
    spool.ack([ids[0] as number]); // delivered
    await spool.markSending([ids[5] as number]); // written in the same loop as the ack
    expect(readdirSync(dir).filter((name) => name.endsWith('.seg')).length).toBeGreaterThan(1);
    expect(readdirSync(dir)).toContain('LOCK');

    const before = snapshotOf(dir);
    const source = spoolSource(dir);
    const records = await source.read();
    expect(snapshotOf(dir)).toEqual(before); // read-only: not a byte changed, no file added or removed

    const events = records.messages.flatMap((m) =>
      m.kind === 'event' ? [m.payload.properties.$insert_id] : [],
    );
    expect(events).toEqual(['insert-1', 'insert-2', 'insert-3', 'insert-4', 'insert-5']);
    expect(records.messages.filter((m) => m.kind === 'profile')).toHaveLength(1);
    expect(records.origins?.every((origin) => origin.pending?.startsWith(`spool ${dir}, segment `))).toBe(
      true,
    );
    expect(records.unreadable).toEqual([]);
    expect(records.notices?.[0]).toMatch(/only what is not delivered yet/);

    const view = await readSpoolDirectory(dir);
    expect([view.settled, view.records.length, view.damage]).toEqual([1, 6, []]);
    expect(view.records.filter((record) => record.sending).map((record) => record.endpoint)).toEqual([
      'import',
      'engage',
    ]);
    expect(records.origins?.at(-1)?.pending).toMatch(/\(being sent\)$/);
  });

  it('skips a torn tail and a record with a flipped byte, reports both, and shows every other record', async () => {
    const dir = tempDir();
    const spool = await openSpool(dir, cleanups);
    const ids = [0, 1, 2, 3, 4].map(
      (i) => spool.append(i + 1, 'import', spooledEvent('Viewed', i), true) as number,
    );
    await spool.markSending([ids[4] as number]);
    await spool.close();
    const [segment] = readdirSync(dir).filter((name) => name.endsWith('.seg'));
    const path = join(dir, segment as string);
    const bytes = readFileSync(path);
    // Flip one byte inside the third record's JSON, then cut the last record in half (a crash mid-write).
    const third = bytes.indexOf('insert-2');
    bytes[third + 3] = (bytes[third + 3] as number) ^ 0x20;
    const last = bytes.lastIndexOf(Buffer.from('SPL1'));
    writeFileSync(path, bytes.subarray(0, last + 30));

    const records = await spoolSource(dir).read();
    const events = records.messages.flatMap((m) =>
      m.kind === 'event' ? [m.payload.properties.$insert_id] : [],
    );
    expect(events).toEqual(['insert-0', 'insert-1', 'insert-3']);
    const damage = records.notices?.filter((notice) => notice.startsWith('Spool:')) ?? [];
    expect(damage).toHaveLength(2);
    expect(damage[0]).toMatch(/damaged bytes at offset \d+ .*checksum mismatch/);
    expect(damage[1]).toMatch(/ends in 30 bytes of an incomplete record/);
  });

  it('calls back when the owner appends, so the page updates live', async () => {
    const dir = tempDir();
    const spool = await openSpool(dir, cleanups);
    const source = spoolSource(dir);
    let changes = 0;
    cleanups.push(source.watch(() => (changes += 1)));
    const id = spool.append(1, 'import', spooledEvent('Viewed', 0), true) as number;
    await spool.markSending([id]);
    await until(() => changes > 0);
    expect((await source.read()).messages).toHaveLength(1);
  });

  it('reads as "nothing yet" (ENOENT) before the spool directory exists, and tolerates a segment deleted under it', async () => {
    const dir = tempDir();
    await expect(spoolSource(join(dir, 'missing')).read()).rejects.toMatchObject({ code: 'ENOENT' });
    writeFileSync(join(dir, '0000000007.ack'), ''); // a ledger whose segment the owner just collected
    expect((await spoolSource(dir).read()).messages).toEqual([]);
  });
});
