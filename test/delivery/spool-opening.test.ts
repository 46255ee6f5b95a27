/**
 * While the spool opens (taking its lock, reading what the last process left), messages wait in memory to
 * be journaled after what it recovers. That wait is bounded by the memory budget like the queue itself:
 * an open that hangs (a lock on a stalled network disk; here a LOCK that is a FIFO, whose read blocks until
 * a writer comes) during a burst must not grow memory without limit. Past `maxQueueBytes` the memory policy
 * applies and every drop is counted with its reason. Real sockets to the fake Mixpanel.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdstitchError } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, expect, it } from 'vitest';

let fake: FakeMixpanel;
let dir: string;
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'early', apiSecret: 'early-secret' });
  dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-opening-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Lets the blocked reader of the FIFO go on (it reads an empty LOCK, stale, and takes the lock). */
async function unblock(fifo: string): Promise<void> {
  // Opening the write end without blocking fails (ENXIO) until the reader has the FIFO open.
  for (let attempt = 0; attempt < 500; attempt += 1) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

it('messages written while the spool opens stay within maxQueueBytes; the rest are dropped and counted', {
  timeout: 30_000,
}, async () => {
  const lock = join(dir, 'LOCK');
  execFileSync('mkfifo', [lock]);
  const maxQueueBytes = 64 * 1024;
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: 'early',
    apiSecret: 'early-secret',
    host: fake.url,
    flushIntervalMs: 20,
    maxQueueBytes,
    spool: { dir },
    onError: (error) => errors.push(error),
  });
  try {
    const padding = 'x'.repeat(900);
    for (let i = 0; i < 500; i += 1) sink.write(eventMessage('Early', { i, padding }));
    const opening = sink.stats();
    // Nothing can be on disk yet: whatever was kept is in memory, and within the budget.
    expect(opening.spooled, 'nothing is on disk while the spool opens').toBe(0);
    expect(opening.queuedBytes).toBeLessThanOrEqual(maxQueueBytes);
    expect(opening.queued).toBeGreaterThan(0);
    expect(opening.dropped.queue_overflow).toBe(500 - opening.queued);
    expect(errors.map((e) => e.code)).toContain('queue_overflow');
  } finally {
    await unblock(lock);
  }
  await sink.ready();
  await sink.drain();
  const stats = sink.stats();
  expect(fake.insertIds().size).toBe(stats.delivered);
  expect(stats.delivered + stats.dropped.queue_overflow).toBe(500);
  expect(stats).toMatchObject({ tracked: 500, queued: 0, spooled: 0 });
  expect(errors.filter((e) => e.code.startsWith('spool_'))).toEqual([]);
  await sink.close();
});

it('with drop_oldest, the newest messages written while the spool opens are the ones kept', {
  timeout: 30_000,
}, async () => {
  fake.clear();
  const lock = join(dir, 'LOCK');
  rmSync(lock, { force: true });
  execFileSync('mkfifo', [lock]);
  const sink = new MixpanelSink({
    token: 'early',
    apiSecret: 'early-secret',
    host: fake.url,
    flushIntervalMs: 20,
    maxQueueBytes: 64 * 1024,
    overflow: 'drop_oldest',
    spool: { dir },
    onError: () => {},
  });
  let kept = 0;
  try {
    const padding = 'x'.repeat(900);
    for (let i = 0; i < 500; i += 1) sink.write(eventMessage('Early', { i, padding }));
    const opening = sink.stats();
    expect(opening.queuedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(opening.spooled).toBe(0);
    expect(opening.dropped.queue_overflow).toBe(500 - opening.queued);
    kept = opening.queued;
  } finally {
    await unblock(lock);
  }
  await sink.ready();
  await sink.drain();
  const delivered = fake.events.map((event) => event.properties.i as number).sort((a, b) => a - b);
  expect(delivered).toEqual(Array.from({ length: kept }, (_, k) => 500 - kept + k));
  await sink.close();
});
