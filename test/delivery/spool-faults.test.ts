/**
 * The spool's faults through the whole sink (issue 11), real sockets to the fake Mixpanel: a full disk
 * (a 256 KiB tmpfs), a read-only spool directory, a segment with flipped bytes. Each one is reported,
 * never thrown, and every tracked message is accounted for: delivered, dropped with a reason, or spooled.
 * The tmpfs tests need `mount` (root); elsewhere they are skipped with the reason, except on CI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdstitchError, MixpanelSinkOptions } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, expect, it } from 'vitest';

let fake: FakeMixpanel;
const dirs: string[] = [];
const mounts: string[] = [];
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'faults', apiSecret: 'faults-secret' });
});
afterAll(async () => {
  await fake.close();
  for (const dir of mounts) {
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' });
    } catch {}
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-fault-'));
  dirs.push(dir);
  return dir;
}

/**
 * A tmpfs at a fresh directory, or the reason it cannot be had (not root). Pass `mode=700`: a tmpfs root is
 * 1777 by default, and the spool refuses a directory others can write.
 */
function tmpfs(options: string): { dir: string } | { skip: string } {
  const dir = tempDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
    mounts.push(dir);
    return { dir };
  } catch (error) {
    const reason = `cannot mount a tmpfs (${(error as Error).message.split('\n')[0]}); needs root`;
    if (process.env.CI === 'true') throw new Error(`${reason}. CI must run this test.`);
    return { skip: reason };
  }
}

function createSink(dir: string, options: Partial<MixpanelSinkOptions> = {}) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: 'faults',
    apiSecret: 'faults-secret',
    host: fake.url,
    flushIntervalMs: 20,
    retry: { minDelayMs: 20, maxDelayMs: 50 },
    spool: { dir },
    onError: (error) => errors.push(error),
    ...options,
  });
  return { sink, errors };
}

function expectBalanced(sink: MixpanelSink): void {
  const s = sink.stats();
  expect(s.tracked + s.recovered, 'tracked + recovered = delivered + dropped + queued + spooled').toBe(
    s.delivered + s.droppedTotal + s.queued + s.spooled,
  );
}

it('a full disk falls back to the memory policy with a report, never a crash; every message accounted for', {
  timeout: 30_000,
}, async (context) => {
  const mounted = tmpfs('size=256k,mode=700');
  if ('skip' in mounted) return context.skip(mounted.skip);
  fake.clear();
  await fake.goDown();
  const { sink, errors } = createSink(mounted.dir, { maxQueueBytes: 64 * 1024 });
  await sink.ready();
  const padding = 'x'.repeat(900);
  const ids = new Set<string>();
  // ~1 KiB each: 600 of them are more than the disk (256 KiB) and the memory budget (64 KiB) together.
  for (let i = 0; i < 600; i += 1) {
    const message = eventMessage('Disk Full', { i, padding });
    ids.add(message.payload.properties.$insert_id);
    sink.write(message);
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const codes = errors.map((e) => e.code);
  expect(codes).toContain('spool_failed');
  expect(errors.find((e) => e.code === 'spool_failed')?.details).toMatchObject({ code: 'ENOSPC' });
  expect(sink.stats().dropped.queue_overflow, 'the memory policy dropped the rest, counted').toBeGreaterThan(
    0,
  );
  expectBalanced(sink);

  await fake.comeBack();
  await sink.drain();
  const stats = sink.stats();
  expect(stats).toMatchObject({ tracked: 600, queued: 0, spooled: 0 });
  expect(stats.delivered + stats.dropped.queue_overflow).toBe(600);
  const received = fake.insertIds();
  expect(received.size).toBe(stats.delivered);
  expect([...received].every((id) => ids.has(id))).toBe(true);
  expectBalanced(sink);
  await sink.close();
});

it('a read-only spool directory is reported and the sink delivers from memory', async (context) => {
  const mounted = tmpfs('ro,size=64k,mode=700');
  if ('skip' in mounted) return context.skip(mounted.skip);
  fake.clear();
  const { sink, errors } = createSink(mounted.dir);
  await sink.ready();
  expect(errors.map((e) => e.code)).toEqual(['spool_unavailable']);
  expect(errors[0]?.message).toContain('Point spool.dir at a writable directory');
  expect(errors[0]?.details).toMatchObject({ code: 'EROFS' });
  for (let i = 0; i < 20; i += 1) sink.write(eventMessage('Read Only', { i }));
  await sink.drain();
  expect(fake.insertIds().size).toBe(20);
  expect(sink.stats()).toMatchObject({ tracked: 20, delivered: 20, spooled: 0, recovered: 0 });
  expectBalanced(sink);
  await sink.close();
});

it('a segment with flipped bytes: the damaged record is skipped and reported, the rest delivered', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const dir = tempDir();
  await fake.goDown();
  const first = createSink(dir);
  await first.sink.ready();
  const ids: string[] = [];
  for (let i = 0; i < 40; i += 1) {
    const message = eventMessage('Flipped', { i });
    ids.push(message.payload.properties.$insert_id);
    first.sink.write(message);
  }
  await first.sink.close(200);
  expect(first.sink.stats()).toMatchObject({ tracked: 40, spooled: 40 });

  const [segment] = readdirSync(dir).filter((name) => name.endsWith('.seg'));
  const path = join(dir, segment as string);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(ids[17] as string);
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0x20, at); // one bit of record 18's $insert_id
  writeFileSync(path, bytes);

  await fake.comeBack();
  const second = createSink(dir);
  await second.sink.ready();
  await second.sink.drain();
  expect(second.errors.map((e) => e.code)).toEqual(['spool_corrupt']);
  const received = fake.insertIds();
  expect(received.size).toBe(39);
  expect(ids.filter((id) => !received.has(id))).toEqual([ids[17]]);
  expect(second.sink.stats()).toMatchObject({ recovered: 39, delivered: 39, spooled: 0 });
  expectBalanced(second.sink);
  await second.sink.close();
});

it('a record this process spilled, damaged on disk before it is read back, is dropped (spool_damaged): drain() returns', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const dir = tempDir();
  await fake.goDown();
  // A memory budget of 5: the rest of the 40 live on disk only until read back.
  const { sink, errors } = createSink(dir, { maxQueueMessages: 5 });
  await sink.ready();
  const ids: string[] = [];
  const outcomes: string[] = [];
  for (let i = 0; i < 40; i += 1) {
    const message = eventMessage('Damaged', { i });
    ids.push(message.payload.properties.$insert_id);
    sink.write(message, (outcome) => outcomes.push(String(outcome)));
  }
  expect(sink.stats().spooled).toBeGreaterThan(30);
  for (let wait = 0; (sink.stats().spool?.synced ?? 0) < 40; wait += 1) {
    if (wait > 500) throw new Error('the spool did not write its records');
    await new Promise((done) => setTimeout(done, 10));
  }

  const [segment] = readdirSync(dir).filter((name) => name.endsWith('.seg'));
  const path = join(dir, segment as string);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(ids[20] as string);
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0x20, at); // one bit of record 21's $insert_id: spilled, not read yet
  writeFileSync(path, bytes);

  await fake.comeBack();
  // Before, the damaged record stayed in `spooled` for ever and drain() never returned: bounded here.
  const drained = await Promise.race([
    sink.drain().then(() => 'drained'),
    new Promise((done) => setTimeout(() => done('drain() did not return'), 10_000).unref()),
  ]);
  expect(drained).toBe('drained');
  expect(errors.map((e) => e.code)).toContain('spool_corrupt');
  const stats = sink.stats();
  expect(stats).toMatchObject({ tracked: 40, delivered: 39, spooled: 0, queued: 0 });
  expect(stats.dropped.spool_damaged).toBe(1);
  expect(stats.delivered + stats.dropped.spool_damaged).toBe(40);
  expect(outcomes.filter((o) => o === 'spool_damaged')).toHaveLength(1);
  expect(fake.insertIds().has(ids[20] as string)).toBe(false);
  expectBalanced(sink);
  await sink.close();
});
