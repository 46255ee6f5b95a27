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
  const first = createSink(dir);
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
  await second.sink.flush();
  const received = fake.insertIds();
  expect(received.size).toBe(300);
  expect(ids.every((id) => received.has(id))).toBe(true);
  expect(fake.profileState('user-1')).toEqual({ seen: ['t0', 't60', 't120', 't180', 't240'] });
  expect(second.sink.stats()).toMatchObject({ recovered: 305, delivered: 305, spooled: 0, queued: 0 });
  expectBalanced(second.sink);
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
  expect(second.errors).toEqual([]);
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
