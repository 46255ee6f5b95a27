/**
 * With a spool, the memory queue still never holds more than `maxQueueBytes`: while Mixpanel does not answer,
 * what memory cannot hold goes to disk and is read back as room appears. A read back is asynchronous, so the
 * room it was asked to fill must stay reserved until its records arrive; messages taken meanwhile go to disk.
 * Real sockets to the fake Mixpanel, which leaves every request unanswered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, type ScriptedFault, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, expect, it } from 'vitest';

let fake: FakeMixpanel;
let dir: string;
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: 'budget', apiSecret: 'budget-secret' });
  dir = mkdtempSync(join(tmpdir(), 'idstitch-spool-budget-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

it('a stalled Mixpanel with a spool: the memory queue stays within maxQueueBytes at every moment', {
  timeout: 60_000,
}, async () => {
  fake.fail(...Array.from({ length: 2000 }, (): ScriptedFault => ({ kind: 'hang' })));
  const maxQueueBytes = 16 * 1024;
  const sink = new MixpanelSink({
    token: 'budget',
    apiSecret: 'budget-secret',
    host: fake.url,
    flushIntervalMs: 5,
    requestTimeoutMs: 200,
    maxQueueBytes,
    spool: { dir },
    onError: () => {},
  });
  await sink.ready();
  let most = 0;
  const sizes = [40, 400, 4000];
  for (let i = 0; i < 3000; i += 1) {
    sink.write(eventMessage('Stalled', { i, padding: 'x'.repeat(sizes[i % 3] ?? 0) }));
    most = Math.max(most, sink.stats().queuedBytes);
    // Yield often, so that disk writes complete and read-backs run between writes.
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
  for (let i = 0; i < 50; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    most = Math.max(most, sink.stats().queuedBytes);
  }
  const stats = sink.stats();
  expect(stats.spooled, 'the stall spilled to disk').toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(maxQueueBytes);
  expect(stats.tracked).toBe(stats.delivered + stats.droppedTotal + stats.queued + stats.spooled);
  await sink.close(500);
});
