/**
 * Issue 11's burst: 20 000 events tracked at once while Mixpanel answers 500, 503, 429, resets the
 * connection and stalls for 3 s, with the sink's DEFAULT budgets and retry policy. Before the byte
 * budget became the default, the queue stopped at 10 000 messages (3.2 MB of its 16 MiB) and dropped
 * the other half. Real sockets, real backoff (about 2 s a retry), so this takes ~15 s.
 */
import type { IdstitchError } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { expect, it } from 'vitest';
import { expectConserved } from './support.js';

const TOTAL = 20_000;

it('holds and delivers a 20 000-event burst through 500/503/429/resets/a 3 s stall with default settings', {
  timeout: 90_000,
}, async () => {
  const fake = await startFakeMixpanel({ token: 'burst', apiSecret: 'burst-secret', recordBodies: false });
  fake.fail(
    { kind: 'status', status: 500 },
    { kind: 'status', status: 503 },
    { kind: 'reset' },
    { kind: 'status', status: 429 },
    { kind: 'delay', ms: 3000 },
    { kind: 'resetMidResponse' },
  );
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: 'burst',
    apiSecret: 'burst-secret',
    host: fake.url,
    onError: (error) => errors.push(error),
  });
  const written = new Set<string>();
  for (let i = 0; i < TOTAL; i += 1) {
    const message = eventMessage('Burst', { i, plan: 'pro', path: `/items/${i}` });
    written.add(message.payload.properties.$insert_id);
    sink.write(message);
  }
  await sink.flush();

  const received = fake.insertIds();
  expect(errors.map((e) => e.code)).toEqual([]);
  expect(received.size).toBe(TOTAL);
  expect([...written].every((id) => received.has(id))).toBe(true);
  expect(sink.stats()).toMatchObject({ tracked: TOTAL, delivered: TOTAL, droppedTotal: 0 });
  expectConserved(sink);
  await sink.close();
  await fake.close();
});
