/**
 * The disk spool behind MixpanelSink (issue 11): what one process could not deliver is delivered by
 * the next one on the same directory, with the same `$insert_id`s, the profile updates applied once,
 * and the conservation law holding across the restart. Real sockets to the fake Mixpanel.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdstitchError, MixpanelSinkOptions, MixpanelSink as Sink } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage, profileMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, expect, it } from 'vitest';

let fake: FakeMixpanel;
const dirs: string[] = [];
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'spool', apiSecret: 'spool-secret' });
});
afterAll(async () => {
  await fake.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-sink-spool-'));
  dirs.push(dir);
  return dir;
}

function createSink(dir: string, options: Partial<MixpanelSinkOptions> = {}) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: 'spool',
    apiSecret: 'spool-secret',
    host: fake.url,
    flushIntervalMs: 20,
    retry: { minDelayMs: 20, maxDelayMs: 100 },
    spool: { dir },
    onError: (error) => errors.push(error),
    ...options,
  });
  return { sink, errors };
}

function expectBalanced(sink: Sink): void {
  const s = sink.stats();
  expect(s.tracked + s.recovered, 'tracked + recovered = delivered + dropped + queued + spooled').toBe(
    s.delivered + s.droppedTotal + s.queued + s.spooled,
  );
}

it('what a process could not deliver is delivered by the next one: same $insert_ids, updates applied once', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const dir = spoolDir();
  await fake.goDown();
  // Long backoffs: the close deadline finds the updates waiting, not on the wire (then they would be in doubt).
  const first = createSink(dir, { retry: { minDelayMs: 1000, maxDelayMs: 1000 } });
  await first.sink.ready();
  const ids: string[] = [];
  for (let i = 0; i < 300; i += 1) {
    const message = eventMessage('Spooled', { i });
    ids.push(message.payload.properties.$insert_id);
    first.sink.write(message);
    if (i % 60 === 0)
      first.sink.write(profileMessage({ $distinct_id: 'user-1', $append: { seen: `t${i}` } }));
  }
  await first.sink.close(300);
  const left = first.sink.stats();
  expect(left).toMatchObject({ tracked: 305, delivered: 0, droppedTotal: 0, queued: 0, spooled: 305 });
  expectBalanced(first.sink);

  await fake.comeBack();
  const second = createSink(dir);
  await second.sink.ready();
  expect(second.sink.stats().recovered).toBe(305);
  await second.sink.drain();
  const received = fake.insertIds();
  expect(received.size).toBe(300);
  expect(ids.every((id) => received.has(id))).toBe(true);
  // Applied once each: none twice, and none lost unless counted in doubt (a request of the first process
  // may have been on the wire at its deadline; with Mixpanel refusing connections that is rare).
  const seen = (fake.profileState('user-1')?.seen ?? []) as string[];
  const inDoubt = second.sink.stats().dropped.in_doubt;
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.length + inDoubt).toBe(5);
  expect(second.sink.stats()).toMatchObject({
    recovered: 305,
    delivered: 305 - inDoubt,
    spooled: 0,
    queued: 0,
  });
  expectBalanced(second.sink);
  // Across the restart: tracked₁ + tracked₂ = delivered₁ + delivered₂ + dropped₁ + dropped₂ + spooled₂.
  const done = second.sink.stats();
  expect(left.tracked + done.tracked).toBe(
    left.delivered + done.delivered + left.droppedTotal + done.droppedTotal + done.spooled,
  );
  await second.sink.close();

  // Settled records are never sent again.
  fake.clear();
  const third = createSink(dir);
  await third.sink.ready();
  await third.sink.flush();
  expect(third.sink.stats().recovered).toBe(0);
  expect(fake.requests).toHaveLength(0);
  await third.sink.close();
  expect(first.errors.map((e) => e.code)).not.toContain('queue_overflow');
  expect(second.errors.filter((e) => e.code !== 'in_doubt')).toEqual([]);
});

it('past a small memory budget messages wait on disk instead of being dropped', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const { sink, errors } = createSink(spoolDir(), { maxQueueBytes: 16 * 1024 });
  await sink.ready();
  for (let i = 0; i < 3000; i += 1) sink.write(eventMessage('Budget', { i }));
  const during = sink.stats();
  expect(during.queuedBytes).toBeLessThanOrEqual(16 * 1024);
  expect(during.spooled).toBeGreaterThan(0);
  await sink.flush();
  expect(fake.insertIds().size).toBe(3000);
  expect(sink.stats()).toMatchObject({ delivered: 3000, droppedTotal: 0, spooled: 0 });
  expect(errors).toEqual([]);
  expectBalanced(sink);
  await sink.close();
});

it('a second process on one spool directory is refused with a clear error and delivers from memory', async () => {
  fake.clear();
  const dir = spoolDir();
  const one = createSink(dir);
  await one.sink.ready();
  const two = createSink(dir);
  await two.sink.ready();
  expect(two.errors.map((e) => e.code)).toEqual(['spool_locked']);
  expect(two.errors[0]?.message).toContain(`in use by process ${process.pid}`);
  two.sink.write(eventMessage('Still delivered'));
  await two.sink.flush();
  expect(fake.insertIds().size).toBe(1);
  await Promise.all([one.sink.close(), two.sink.close()]);
});

it('drain() resolves once everything tracked is settled: spooled messages and what a previous process left', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const dir = spoolDir();
  await fake.goDown();
  const first = createSink(dir);
  for (let i = 0; i < 50; i += 1) first.sink.write(eventMessage('Left', { i }));
  await first.sink.close(100);
  expect(first.sink.stats().spooled).toBe(50);

  const second = createSink(dir, { maxQueueBytes: 4096 });
  // Open first: until then, messages wait in memory within maxQueueBytes (spool-opening.test.ts).
  await second.sink.ready();
  for (let i = 0; i < 200; i += 1) second.sink.write(eventMessage('Drained', { i }));
  let drained = false;
  const draining = second.sink.drain().then(() => {
    drained = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(drained, 'Mixpanel is down: nothing can settle').toBe(false);
  expect(second.sink.stats().spooled).toBeGreaterThan(0);
  await fake.comeBack();
  await draining;
  expect(second.sink.stats()).toMatchObject({
    recovered: 50,
    tracked: 200,
    delivered: 250,
    queued: 0,
    spooled: 0,
  });
  expect(fake.insertIds().size).toBe(250);
  expectBalanced(second.sink);
  await second.sink.drain(); // nothing left: at once
  await second.sink.close();
});

it('in production without spool.dir there is no spool, and the sink says once how to turn it on', () => {
  const saved = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  delete (globalThis as Record<symbol, unknown>)[Symbol.for('idstitch.mixpanel.spoolHinted')];
  try {
    const errors: IdstitchError[] = [];
    const onError = (error: IdstitchError) => errors.push(error);
    const one = new MixpanelSink({ token: 'spool', host: fake.url, onError });
    const two = new MixpanelSink({ token: 'spool', host: fake.url, onError });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain("spool: { dir: '/var/lib/");
    expect(one.stats().spool).toBeUndefined();
    void one.close();
    void two.close();
  } finally {
    process.env.NODE_ENV = saved;
  }
});
