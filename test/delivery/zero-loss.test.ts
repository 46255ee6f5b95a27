/**
 * Zero loss under transient faults: 50 000 events tracked while the fake answers with a mix of
 * 500/503/429 (with and without Retry-After), connection resets before and after ingesting, and
 * 5-second stalls. After `flush()` Mixpanel must hold exactly the 50 000 `$insert_id`s, and the
 * sink's counters must balance. Real time and real sockets; backoff is shortened through options.
 */
import type { MixpanelSinkEvents } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeFault, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { expect, it } from 'vitest';
import { expectConserved } from './support.js';

const TOTAL = 50_000;

/** Deterministic pseudo-random numbers (mulberry32), so the fault mix is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

it('delivers exactly 50 000 distinct events through 5xx, 429, resets and stalls', {
  timeout: 60_000,
}, async () => {
  const fake = await startFakeMixpanel({ token: 'zero-loss', apiSecret: 'zl-secret', recordBodies: false });
  // Every kind of fault is guaranteed to occur: the first requests meet this script in order...
  fake.fail(
    { kind: 'status', status: 500 },
    { kind: 'delay', ms: 5000 },
    { kind: 'status', status: 503 },
    { kind: 'status', status: 429 },
    { kind: 'reset' },
    { kind: 'status', status: 429, retryAfter: 1 },
    { kind: 'resetMidResponse' },
    { kind: 'status', status: 503, retryAfter: 1 },
    { kind: 'delay', ms: 5000 },
    { kind: 'status', status: 502 },
  );
  // ...and after it, about one request in four meets a random one.
  const random = seeded(20_260_101);
  const mix: FakeFault[] = [
    { kind: 'status', status: 500 },
    { kind: 'status', status: 503 },
    { kind: 'status', status: 429 },
    { kind: 'status', status: 429, retryAfter: 1 },
    { kind: 'reset' },
    { kind: 'resetMidResponse' },
  ];
  fake.setFaultPolicy(() => (random() < 0.25 ? mix[Math.floor(random() * mix.length)] : undefined));

  const retries: MixpanelSinkEvents['retry'][] = [];
  const errors: unknown[] = [];
  const sink = new MixpanelSink({
    token: 'zero-loss',
    apiSecret: 'zl-secret',
    host: fake.url,
    concurrency: 4,
    flushIntervalMs: 50,
    // Shorter than the 5-second stalls, so they surface as timeouts (after which the fake still
    // ingests the stalled copy: duplicates that must collapse on $insert_id).
    requestTimeoutMs: 2000,
    maxQueueMessages: TOTAL,
    maxQueueBytes: 256 * 1024 * 1024,
    retry: { minDelayMs: 20, maxDelayMs: 200, maxRetries: 100, maxDurationMs: 120_000 },
    onError: (error) => errors.push(error),
  });
  sink.on('retry', (event) => retries.push(event));

  const written = new Set<string>();
  for (let chunk = 0; chunk < 50; chunk += 1) {
    for (let i = 0; i < TOTAL / 50; i += 1) {
      const message = eventMessage('Zero Loss', { chunk, i });
      written.add(message.payload.properties.$insert_id);
      sink.write(message);
    }
    // Let requests and faults interleave with tracking, as they would under traffic.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await sink.flush();

  const received = fake.insertIds();
  expect(received.size).toBe(TOTAL);
  expect([...written].every((id) => received.has(id))).toBe(true);
  expect(errors).toEqual([]);
  expect(sink.stats()).toMatchObject({ tracked: TOTAL, delivered: TOTAL, droppedTotal: 0 });
  expectConserved(sink);

  // The run really went through every kind of fault.
  const causes = new Set(
    retries.map((r) => (r.cause.startsWith('network') ? 'network' : r.cause.split(':')[0])),
  );
  expect(causes).toEqual(new Set(['HTTP 500', 'HTTP 502', 'HTTP 503', 'HTTP 429', 'network', 'timeout']));
  expect(retries.some((r) => r.retryAfter)).toBe(true);
  expect(retries.some((r) => r.cause.startsWith('HTTP 429') && !r.retryAfter)).toBe(true);
  // Resets after ingesting and stalls make the fake see some events twice; $insert_id collapses them.
  expect(fake.counters.duplicates).toBeGreaterThan(0);

  await sink.close();
  await fake.close();
});
