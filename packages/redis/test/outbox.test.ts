import type { MixpanelEvent } from '@idstitch/core';
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage, profileMessage } from '@idstitch/fake-mixpanel/helpers';
import {
  OUTBOX_STREAM_LAYOUT,
  OutboxWorker,
  type OutboxWorkerOptions,
  RedisOutbox,
  type RedisOutboxOptions,
} from '@idstitch/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer, until } from './helpers/redis-server.js';
import { errorLog, fastMixpanel, pendingCount, TOKEN } from './helpers/setup.js';

const STREAM = 'idstitch:outbox';
let redis: RedisServer;
let fake: FakeMixpanel;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [redis, fake] = await Promise.all([
    startRedisServer(),
    startFakeMixpanel({ token: TOKEN, apiSecret: 'api-secret' }),
  ]);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await redis.ensureRunning();
  await redis.client.flushall();
  fake.clear();
});
afterAll(async () => {
  await Promise.all([redis.stop(), fake.close()]);
});

function createOutbox(options: Partial<RedisOutboxOptions> = {}) {
  const log = errorLog();
  const outbox = new RedisOutbox({
    redis: redis.url,
    mixpanel: fastMixpanel(fake),
    worker: { blockMs: 100 },
    onError: log.onError,
    ...options,
  });
  closers.push(() => outbox.close(0));
  return { outbox, ...log };
}

function createWorker(options: Partial<OutboxWorkerOptions> = {}) {
  const log = errorLog();
  const worker = new OutboxWorker({
    redis: redis.url,
    mixpanel: fastMixpanel(fake),
    blockMs: 100,
    onError: log.onError,
    ...options,
  });
  closers.push(() => worker.close(0));
  return { worker: worker.start(), ...log };
}

const insertIdOf = (message: { payload: unknown }) =>
  (message.payload as MixpanelEvent).properties.$insert_id;
const streamLength = () => redis.client.xlen(STREAM);

describe('RedisOutbox with its in-process worker', () => {
  it('appends each message, delivers it with its $insert_id, and removes it from the stream once accepted', async () => {
    const { outbox, errors } = createOutbox();
    const events = Array.from({ length: 50 }, (_, i) => eventMessage('Viewed', { i }));
    for (const event of events) outbox.write(event);
    outbox.write(profileMessage({ $distinct_id: 'user-1', $set: { plan: 'pro' } }));
    await outbox.flush();

    expect(fake.insertIds()).toEqual(new Set(events.map(insertIdOf)));
    expect(fake.profileState('user-1')).toEqual({ plan: 'pro' });
    expect(await streamLength()).toBe(0);
    expect(await pendingCount(redis.client, STREAM)).toBe(0);
    const stats = outbox.stats();
    expect(stats).toMatchObject({ tracked: 51, appended: 51, buffered: 0, droppedTotal: 0 });
    expect(stats.worker).toMatchObject({ read: 51, delivered: 51, acked: 51, inFlight: 0 });
    expect(errors).toEqual([]);
  });

  it('acknowledges only what Mixpanel accepted: entries stay pending through 503s and go once it recovers', async () => {
    const { outbox } = createOutbox();
    fake.setFaultPolicy(() => ({ kind: 'status', status: 503 }));
    const events = Array.from({ length: 20 }, () => eventMessage('Queued'));
    for (const event of events) outbox.write(event);
    await until(() => fake.requests.length >= 3, 'a few refused attempts');
    expect(await streamLength()).toBe(20);
    expect(await pendingCount(redis.client, STREAM)).toBe(20);
    expect(fake.events).toHaveLength(0);

    fake.setFaultPolicy(undefined);
    await until(async () => fake.events.length === 20 && (await streamLength()) === 0, 'delivery');
    expect(fake.insertIds()).toEqual(new Set(events.map(insertIdOf)));
  });

  it('acknowledges what Mixpanel refuses for good (strict-mode failed_records) and reports it', async () => {
    const { outbox, codes } = createOutbox();
    const [good, refused, alsoGood] = [eventMessage('A'), eventMessage('B'), eventMessage('C')];
    fake.fail({ kind: 'refuse', insertIds: [insertIdOf(refused)] });
    for (const event of [good, refused, alsoGood]) outbox.write(event);
    await outbox.flush();
    expect(fake.insertIds()).toEqual(new Set([insertIdOf(good), insertIdOf(alsoGood)]));
    expect(await streamLength()).toBe(0);
    expect(outbox.stats().worker).toMatchObject({ delivered: 2, rejected: 1 });
    expect(codes()).toContain('rejected_by_mixpanel');
  });

  it('keeps entries whose retries ran out and claims them again after claimIdleMs', async () => {
    const { outbox, errors } = createOutbox({
      mixpanel: fastMixpanel(fake, { retry: { minDelayMs: 5, maxDelayMs: 5, jitter: 0, maxRetries: 1 } }),
      worker: { blockMs: 100, claimIdleMs: 300, claimIntervalMs: 50 },
    });
    fake.fail(...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 503 })));
    const events = Array.from({ length: 5 }, () => eventMessage('Retried'));
    for (const event of events) outbox.write(event);
    await until(async () => fake.events.length === 5 && (await streamLength()) === 0, 'delivery');
    const stats = outbox.stats().worker!;
    expect(stats.released).toBeGreaterThanOrEqual(5);
    expect(stats.claimed).toBeGreaterThanOrEqual(5);
    const exhausted = errors.find((error) => error.code === 'retries_exhausted');
    expect(exhausted?.message).toContain('stay in the Redis stream');
  });

  it('close() delivers within the deadline; what it could not stays pending for another worker', async () => {
    const { outbox } = createOutbox();
    fake.setFaultPolicy(() => ({ kind: 'status', status: 503 }));
    const events = Array.from({ length: 5 }, () => eventMessage('Shutdown'));
    for (const event of events) outbox.write(event);
    await until(() => fake.requests.length >= 1, 'an attempt');
    await outbox.close(200);
    expect(await streamLength()).toBe(5);
    expect(await pendingCount(redis.client, STREAM)).toBe(5);
    outbox.write(eventMessage('Late'));
    expect(outbox.stats().dropped.after_close).toBe(1);

    fake.setFaultPolicy(undefined);
    const { worker } = createWorker({ claimIdleMs: 200, claimIntervalMs: 50 });
    await until(async () => fake.events.length === 5 && (await streamLength()) === 0, 'the next worker');
    expect(worker.stats().claimed).toBe(5);
    expect(fake.insertIds()).toEqual(new Set(events.map(insertIdOf)));
  });
});

describe('RedisOutbox without a worker, and OutboxWorker', () => {
  it('a worker takes over the entries a dead consumer left pending (XAUTOCLAIM)', async () => {
    const { outbox } = createOutbox({ worker: false });
    const events = Array.from({ length: 10 }, () => eventMessage('Orphaned'));
    for (const event of events) outbox.write(event);
    await outbox.flush();
    // The producer created the consumer group with the stream (a worker may start once Redis is full).
    expect(await redis.client.call('XINFO', 'GROUPS', STREAM)).toHaveLength(1);
    // A consumer reads them and dies without acknowledging.
    await redis.client.xreadgroup('GROUP', 'idstitch-delivery', 'dead', 'COUNT', 100, 'STREAMS', STREAM, '>');
    expect(await pendingCount(redis.client, STREAM)).toBe(10);

    const { worker } = createWorker({ claimIdleMs: 200, claimIntervalMs: 50 });
    await until(async () => fake.events.length === 10 && (await streamLength()) === 0, 'takeover');
    expect(worker.stats()).toMatchObject({ read: 0, claimed: 10, delivered: 10 });
    expect(await pendingCount(redis.client, STREAM)).toBe(0);
  });

  it('lays the stream out as OUTBOX_STREAM_LAYOUT says, so a reader (the inspector) finds every message', async () => {
    const { outbox } = createOutbox({ worker: false });
    const event = eventMessage('Viewed', { page: '/' });
    outbox.write(event);
    await outbox.flush();

    const key = `${OUTBOX_STREAM_LAYOUT.defaultPrefix}${OUTBOX_STREAM_LAYOUT.streamSuffix}`;
    expect(outbox.stream).toBe(key);
    const entries = await redis.client.xrange(key, '-', '+');
    expect(entries.map(([, fields]) => fields[0])).toEqual([OUTBOX_STREAM_LAYOUT.messageField]);
    expect(JSON.parse(entries[0]![1][1]!)).toEqual({ kind: event.kind, payload: event.payload });
    const groups = (await redis.client.call('XINFO', 'GROUPS', key)) as unknown[][];
    expect(groups.map((fields) => fields[fields.indexOf('name') + 1])).toEqual([
      OUTBOX_STREAM_LAYOUT.defaultGroup,
    ]);
  });

  it('reports a stream over maxStreamLength and trims nothing', async () => {
    const { outbox, states } = createOutbox({ worker: false, maxStreamLength: 5 });
    for (let i = 0; i < 12; i += 1) outbox.write(eventMessage('Backlog'));
    await outbox.flush();
    expect(await streamLength()).toBe(12);
    expect(outbox.stats()).toMatchObject({ backlogOver: true, streamLength: 12 });
    expect(states('queue_overflow')).toEqual(['started']);

    const { worker } = createWorker();
    await worker.flush();
    expect(fake.events).toHaveLength(12);
    outbox.write(eventMessage('After'));
    await outbox.flush();
    expect(outbox.stats()).toMatchObject({ backlogOver: false, streamLength: 1 });
    expect(states('queue_overflow')).toEqual(['started', 'stopped']);
  });

  it('while Redis is down, writes wait in a bounded local buffer and are appended when it is back', async () => {
    const { outbox, codes, states } = createOutbox({
      worker: false,
      maxBufferedMessages: 5,
      flushTimeoutMs: 200,
    });
    outbox.write(eventMessage('Before'));
    await outbox.flush();
    await redis.crash();
    for (let i = 0; i < 7; i += 1) outbox.write(eventMessage('During'));
    // flush() does not hang on an unreachable Redis; what is buffered stays buffered.
    const started = Date.now();
    await outbox.flush();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(outbox.stats()).toMatchObject({ tracked: 8, appended: 1, buffered: 5, redisDown: true });
    expect(outbox.stats().dropped.queue_overflow).toBe(2);
    expect(states('delivery_failed')).toEqual(['down']);

    await redis.restart();
    await until(() => outbox.stats().buffered === 0, 'the buffer to be appended');
    const stats = outbox.stats();
    expect(stats).toMatchObject({ tracked: 8, appended: 6, buffered: 0, droppedTotal: 2, redisDown: false });
    expect(stats.tracked).toBe(stats.appended + stats.droppedTotal + stats.buffered);
    // Restarted without persistence: the stream holds what was appended after the restart.
    expect(await streamLength()).toBe(5);
    expect(codes().filter((code) => code === 'queue_overflow')).toHaveLength(2);
    expect(states('delivery_failed')).toEqual(['down', 'recovered']);
  });

  it('validates before appending, and counts recordDrop', async () => {
    const { outbox, codes } = createOutbox({ worker: false });
    outbox.write(eventMessage(''));
    outbox.recordDrop('consent', 2);
    await outbox.flush();
    expect(await redis.client.exists(STREAM)).toBe(0);
    expect(outbox.stats()).toMatchObject({ tracked: 3, appended: 0, droppedTotal: 3 });
    expect(codes()).toEqual(['invalid_message']);
  });

  it('rejects bad options with a TypeError naming the option and the fix', () => {
    expect(() => new RedisOutbox({ redis: redis.url })).toThrow(/`mixpanel`.*worker: false/);
    expect(() => new OutboxWorker({ redis: redis.url } as OutboxWorkerOptions)).toThrow(/`mixpanel`/);
    expect(() => new RedisOutbox({ redis: redis.url, worker: false, maxStreamLength: 0 })).toThrow(
      /`maxStreamLength`/,
    );
  });
});
