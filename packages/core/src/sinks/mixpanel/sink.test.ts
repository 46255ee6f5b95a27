import { type FakeMixpanel, type RecordedRequest, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage, groupMessage, profileMessage, recordingClock } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IdstitchError } from '../../errors.js';
import type { OutgoingMessage } from '../../messages/types.js';
import type { MixpanelSinkEvents } from './events.js';
import type { MixpanelSinkOptions } from './options.js';
import { MixpanelSink } from './sink.js';

const SERVICE_ACCOUNT = { username: 'sa-user', secret: 'sa-secret-DO-NOT-LEAK' };
const PROJECT_ID = 4242;
const TOKEN = 'fake-token';

let fake: FakeMixpanel;
const sinks: MixpanelSink[] = [];

beforeAll(async () => {
  fake = await startFakeMixpanel({
    token: TOKEN,
    serviceAccount: SERVICE_ACCOUNT,
    projectId: PROJECT_ID,
    apiSecret: 'api-secret',
  });
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.close(0)));
  fake.clear();
});
afterAll(() => fake.close());

/** A sink on the fake that records what it reports; short backoff so retries take milliseconds. */
function createSink(options: Partial<MixpanelSinkOptions> = {}) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: TOKEN,
    serviceAccount: SERVICE_ACCOUNT,
    projectId: PROJECT_ID,
    host: fake.url,
    flushIntervalMs: 60_000,
    retry: { minDelayMs: 1, maxDelayMs: 5 },
    onError: (error) => errors.push(error),
    ...options,
  });
  sinks.push(sink);
  return { sink, errors };
}

function items(request: RecordedRequest): Record<string, unknown>[] {
  return JSON.parse(request.body.toString('utf8'));
}

function expectConserved(sink: MixpanelSink): void {
  const stats = sink.stats();
  expect(stats.queued).toBe(0);
  expect(stats.tracked).toBe(stats.delivered + stats.droppedTotal);
}

describe('MixpanelSink wire format', () => {
  it('sends events to /import?strict=1 with the service account, project_id and gzip, token added', async () => {
    const { sink, errors } = createSink();
    const messages = [eventMessage('Signed Up', { plan: 'pro' }), eventMessage('Viewed Page')];
    for (const message of messages) sink.write(message);
    await sink.flush();

    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests as [RecordedRequest];
    expect(request.path).toBe('/import');
    expect(request.query).toEqual({ strict: '1', project_id: String(PROJECT_ID) });
    expect(request.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SERVICE_ACCOUNT.username}:${SERVICE_ACCOUNT.secret}`).toString('base64')}`,
    );
    expect(request.headers['content-encoding']).toBe('gzip');
    expect(request.headers['content-type']).toBe('application/json');
    expect(items(request)).toEqual(
      messages.map((m) => ({
        event: m.payload.event,
        properties: { ...m.payload.properties, token: TOKEN },
      })),
    );
    expect(fake.events.map((e) => e.properties.$insert_id)).toEqual(
      messages.map((m) => m.payload.properties.$insert_id),
    );
    expect(errors).toEqual([]);
    expectConserved(sink);
  });

  it('sends events to /track?verbose=1&ip=0 without credentials when only the token is given', async () => {
    const sink = new MixpanelSink({ token: TOKEN, host: fake.url, onError: () => {} });
    sinks.push(sink);
    sink.write(eventMessage('Clicked'));
    await sink.flush();
    const [request] = fake.requests as [RecordedRequest];
    expect(request.path).toBe('/track');
    expect(request.query).toEqual({ verbose: '1', ip: '0' });
    expect(request.headers.authorization).toBeUndefined();
    expect(request.gzip).toBe(true);
    expect(fake.events).toHaveLength(1);
    expect(fake.events[0]?.properties.token).toBe(TOKEN);
  });

  it('keeps a proxy path prefix from host', async () => {
    const { sink } = createSink({ host: `${fake.url}/mp-proxy` });
    sink.write(eventMessage());
    await sink.flush();
    expect(fake.requests[0]?.path).toBe('/mp-proxy/import');
    expect(fake.events).toHaveLength(1);
  });

  it('never mixes endpoints in one request and never gzips /engage or /groups', async () => {
    const { sink, errors } = createSink();
    const written: OutgoingMessage[] = [];
    for (let i = 0; i < 5; i += 1) {
      written.push(eventMessage('E', { i }));
      written.push(profileMessage({ $distinct_id: `u${i}`, $set: { i } }));
      written.push(groupMessage({ $group_key: 'company', $group_id: `c${i}`, $set: { i } }));
    }
    for (const message of written) sink.write(message);
    await sink.flush();

    const byPath = Object.fromEntries(fake.requests.map((r) => [r.path, r]));
    expect(Object.keys(byPath).sort()).toEqual(['/engage', '/groups', '/import']);
    expect(items(byPath['/import'] as RecordedRequest).every((item) => 'event' in item)).toBe(true);
    expect(items(byPath['/engage'] as RecordedRequest).every((item) => '$distinct_id' in item)).toBe(true);
    expect(items(byPath['/groups'] as RecordedRequest).every((item) => '$group_key' in item)).toBe(true);
    expect(byPath['/engage']?.gzip).toBe(false);
    expect(byPath['/groups']?.gzip).toBe(false);
    expect(byPath['/engage']?.query).toEqual({ verbose: '1', ip: '0' });
    expect(byPath['/groups']?.query).toEqual({ verbose: '1' });
    expect(byPath['/engage']?.headers.authorization).toBeUndefined();
    expect(items(byPath['/engage'] as RecordedRequest)[0]).toEqual({
      $distinct_id: 'u0',
      $set: { i: 0 },
      $token: TOKEN,
    });
    expect(fake.events).toHaveLength(5);
    expect(fake.profiles).toHaveLength(5);
    expect(fake.groups).toHaveLength(5);
    expect(errors).toEqual([]);
    expectConserved(sink);
  });

  it('routes $merge to /import even when events go to /track', async () => {
    const { sink } = createSink({ endpoint: 'track' });
    sink.write(eventMessage('Played'));
    sink.write(eventMessage('$merge', { $distinct_ids: ['a', 'b'] }));
    await sink.flush();
    const paths = fake.requests.map((r) => [r.path, items(r).map((item) => item.event)]);
    expect(paths).toContainEqual(['/track', ['Played']]);
    expect(paths).toContainEqual(['/import', ['$merge']]);
    expectConserved(sink);
  });

  it('drops $merge with a clear report when there are no import credentials', async () => {
    const errors: IdstitchError[] = [];
    const sink = new MixpanelSink({ token: TOKEN, host: fake.url, onError: (e) => errors.push(e) });
    sinks.push(sink);
    sink.write(eventMessage('$merge', { $distinct_ids: ['a', 'b'] }));
    await sink.flush();
    expect(fake.requests).toHaveLength(0);
    expect(sink.stats().dropped.invalid).toBe(1);
    expect(errors[0]?.message).toMatch(/\$merge.*\/import.*serviceAccount/);
    expectConserved(sink);
  });
});

describe('MixpanelSink batching', () => {
  it('sends a request as soon as a batch is full, without waiting for flush()', async () => {
    const { sink } = createSink({ maxBatchMessages: 3 });
    for (let i = 0; i < 7; i += 1) sink.write(eventMessage('E', { i }));
    await fake.waitForRequests(2);
    expect(fake.requests.map((r) => items(r).length)).toEqual([3, 3]);
    await sink.flush();
    expect(fake.requests.map((r) => items(r).length)).toEqual([3, 3, 1]);
    expect(fake.events).toHaveLength(7);
  });

  it('keeps every request under maxBatchBytes uncompressed', async () => {
    const { sink } = createSink({ maxBatchBytes: 4096 });
    for (let i = 0; i < 60; i += 1) sink.write(eventMessage('E', { padding: 'x'.repeat(200), i }));
    await sink.flush();
    expect(fake.requests.length).toBeGreaterThan(3);
    for (const request of fake.requests) {
      expect(request.gzip).toBe(true);
      expect(request.body.length).toBeLessThanOrEqual(4096);
    }
    expect(fake.events).toHaveLength(60);
  });

  it('sends a partial batch once the flush interval has passed', async () => {
    const { sink } = createSink({ flushIntervalMs: 20 });
    sink.write(eventMessage('Lonely'));
    await fake.waitForRequests(1);
    await sink.flush();
    expect(fake.events.map((e) => e.event)).toEqual(['Lonely']);
  });
});

describe('MixpanelSink validation at write time', () => {
  it.each([
    ['a placeholder distinct_id', { distinct_id: 'undefined' }, 'properties.distinct_id'],
    ['an $insert_id with bad characters', { $insert_id: 'not valid!' }, 'properties.$insert_id'],
    ['a time two hours ahead', { time: Date.now() + 2 * 3_600_000 }, 'properties.time'],
    ['a time before 1971', { time: 1000 }, 'properties.time'],
  ])('rejects an event with %s, reporting the field, and sends nothing', async (_, properties, field) => {
    const { sink, errors } = createSink();
    const message = eventMessage('Bad');
    Object.assign(message.payload.properties, properties);
    expect(() => sink.write(message)).not.toThrow();
    await sink.flush();
    expect(fake.requests).toHaveLength(0);
    expect(sink.stats().dropped.invalid).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('invalid_message');
    expect(errors[0]?.details.field).toBe(field);
    expectConserved(sink);
  });

  it('rejects an update with two operations', async () => {
    const { sink, errors } = createSink();
    sink.write(profileMessage({ $distinct_id: 'u1', $set: { a: 1 }, $unset: ['b'] }));
    await sink.flush();
    expect(errors[0]?.details.field).toBe('operation');
    expect(sink.stats().dropped.invalid).toBe(1);
  });

  it('rejects a message too large to ever be sent', async () => {
    const { sink, errors } = createSink();
    sink.write(eventMessage('Huge', { blob: 'x'.repeat(1024 * 1024) }));
    await sink.flush();
    expect(errors[0]?.code).toBe('message_too_large');
    expect(sink.stats().dropped.invalid).toBe(1);
    expect(fake.requests).toHaveLength(0);
  });

  it('never throws on input that cannot be serialised', async () => {
    const { sink, errors } = createSink();
    const message = eventMessage('Odd');
    (message.payload.properties as Record<string, unknown>).big = 10n;
    expect(() => sink.write(message)).not.toThrow();
    expect(() => sink.write(null as never)).not.toThrow();
    expect(errors.map((e) => e.code)).toEqual(['invalid_message', 'invalid_message']);
    expect(sink.stats().dropped.invalid).toBe(2);
    expectConserved(sink);
  });
});

describe('MixpanelSink flush()', () => {
  it('resolves only once Mixpanel has acknowledged, not when the request is sent', async () => {
    const { sink } = createSink();
    fake.fail({ kind: 'delay', ms: 150 });
    sink.write(eventMessage('Slow'));
    const flushed = sink.flush();
    await fake.waitForRequests(1);
    expect(fake.events).toHaveLength(0);
    await flushed;
    expect(fake.events).toHaveLength(1);
    expect(sink.stats()).toMatchObject({ delivered: 1, queued: 0 });
  });

  it('coalesces calls made while nothing new was written', async () => {
    const { sink } = createSink();
    sink.write(eventMessage());
    const first = sink.flush();
    const second = sink.flush();
    expect(second).toBe(first);
    await first;
    expect(fake.requests).toHaveLength(1);
  });

  it('does not wait for events written during an in-flight flush; they go out with the next one', async () => {
    const { sink } = createSink();
    fake.fail({ kind: 'delay', ms: 100 });
    const before = eventMessage('Before');
    sink.write(before);
    const flushed = sink.flush();
    const during = eventMessage('During');
    sink.write(during);
    await flushed;
    expect(fake.insertIds()).toEqual(new Set([before.payload.properties.$insert_id]));
    expect(sink.stats().queued).toBe(1);

    await sink.flush();
    expect(fake.insertIds()).toEqual(
      new Set([before.payload.properties.$insert_id, during.payload.properties.$insert_id]),
    );
    expect(fake.requests.map((r) => items(r).map((item) => item.event))).toEqual([['Before'], ['During']]);
    expectConserved(sink);
  });

  it('resolves at once when nothing is queued, and never rejects when delivery fails', async () => {
    const { sink } = createSink();
    await expect(sink.flush()).resolves.toBeUndefined();
    fake.fail({ kind: 'status', status: 400, body: { error: 'nope' } });
    sink.write(eventMessage());
    await expect(sink.flush()).resolves.toBeUndefined();
    expect(sink.stats().dropped.rejected).toBe(1);
    expectConserved(sink);
  });
});

describe('MixpanelSink close()', () => {
  it('delivers what was written just before, then drops later writes as after_close, reported once', async () => {
    const { sink, errors } = createSink();
    const last = eventMessage('Last');
    sink.write(last);
    const closing = sink.close();
    expect(sink.close()).toBe(closing);
    await closing;
    expect(fake.insertIds()).toEqual(new Set([last.payload.properties.$insert_id]));

    sink.write(eventMessage('Too late'));
    sink.write(eventMessage('Even later'));
    expect(sink.stats().dropped.after_close).toBe(2);
    expect(errors.map((e) => e.code)).toEqual(['after_close']);
    expect(fake.requests).toHaveLength(1);
    expectConserved(sink);
  });

  it('delivers messages written while it is closing, as a server finishing its requests does', async () => {
    const { sink } = createSink();
    fake.fail({ kind: 'delay', ms: 80 });
    sink.write(eventMessage('Before close'));
    const closing = sink.close(5000);
    await fake.waitForRequests(1);
    sink.write(eventMessage('While closing'));
    await closing;
    expect(fake.events.map((e) => e.event).sort()).toEqual(['Before close', 'While closing']);
    expect(sink.stats().dropped.after_close).toBe(0);
    expectConserved(sink);
  });
});

describe('MixpanelSink bounded queue', () => {
  it('drops the newest messages when full, warning once when dropping starts and once when it stops', async () => {
    const { sink, errors } = createSink({ maxQueueMessages: 5 });
    const overflow: MixpanelSinkEvents['overflow'][] = [];
    sink.on('overflow', (event) => overflow.push(event));
    const messages = Array.from({ length: 8 }, (_, i) => eventMessage('E', { i }));
    for (const message of messages) sink.write(message);
    expect(sink.stats()).toMatchObject({ queued: 5, dropped: { queue_overflow: 3 } });
    await sink.flush();

    expect(fake.insertIds()).toEqual(
      new Set(messages.slice(0, 5).map((m) => m.payload.properties.$insert_id)),
    );
    expect(overflow).toEqual([
      { state: 'started', dropped: 0 },
      { state: 'stopped', dropped: 3 },
    ]);
    expect(errors.map((e) => [e.code, e.details.state])).toEqual([
      ['queue_overflow', 'started'],
      ['queue_overflow', 'stopped'],
    ]);
    expectConserved(sink);
  });

  it('with drop_oldest, evicts waiting messages to make room for new ones', async () => {
    const { sink } = createSink({ maxQueueMessages: 5, overflow: 'drop_oldest' });
    const messages = Array.from({ length: 8 }, (_, i) => eventMessage('E', { i }));
    for (const message of messages) sink.write(message);
    await sink.flush();
    expect(fake.insertIds()).toEqual(new Set(messages.slice(3).map((m) => m.payload.properties.$insert_id)));
    expect(sink.stats().dropped.queue_overflow).toBe(3);
    expectConserved(sink);
  });

  it('bounds queued bytes too', async () => {
    const { sink } = createSink({ maxQueueBytes: 4096 });
    for (let i = 0; i < 40; i += 1) sink.write(eventMessage('E', { padding: 'x'.repeat(300) }));
    const stats = sink.stats();
    expect(stats.queuedBytes).toBeLessThanOrEqual(4096);
    expect(stats.dropped.queue_overflow).toBeGreaterThan(0);
    expect(stats.queued + stats.dropped.queue_overflow).toBe(40);
    await sink.flush();
    expectConserved(sink);
  });
});

describe('MixpanelSink responses', () => {
  it('reports each record refused in strict mode with its field, and counts the rest delivered', async () => {
    const { sink, errors } = createSink();
    const failed: MixpanelSinkEvents['failedRecord'][] = [];
    sink.on('failedRecord', (record) => failed.push(record));
    const messages = [eventMessage('A'), eventMessage('B'), eventMessage('C')];
    for (const message of messages) sink.write(message);
    const refusedId = messages[1]?.payload.properties.$insert_id;
    fake.fail({
      kind: 'status',
      status: 400,
      body: {
        code: 400,
        error: 'some data points in the request failed validation',
        status: 'Bad Request',
        num_records_imported: 2,
        failed_records: [{ index: 1, $insert_id: refusedId, field: 'properties.time', message: 'too old' }],
      },
    });
    await sink.flush();
    expect(failed).toEqual([
      { endpoint: 'import', index: 1, insertId: refusedId, field: 'properties.time', message: 'too old' },
    ]);
    expect(errors.map((e) => [e.code, e.details.insertId, e.details.field])).toEqual([
      ['rejected_by_mixpanel', refusedId, 'properties.time'],
    ]);
    expect(sink.stats()).toMatchObject({ delivered: 2, dropped: { rejected: 1 }, requests: 1 });
    expectConserved(sink);
  });

  it('after 401 reports once, sends nothing while paused, and tries again afterwards', async () => {
    const clock = recordingClock();
    let now = clock.now();
    const { sink, errors } = createSink({
      clock: { now: () => now, sleep: clock.sleep },
      authPauseMs: 60_000,
    });
    const paused: MixpanelSinkEvents['paused'][] = [];
    sink.on('paused', (event) => paused.push(event));
    fake.fail({ kind: 'status', status: 401 });
    sink.write(eventMessage());
    await sink.flush();
    expect(paused).toEqual([{ endpoint: 'import', status: 401, resumeAt: now + 60_000 }]);

    for (let i = 0; i < 5; i += 1) sink.write(eventMessage());
    await sink.flush();
    expect(fake.requests).toHaveLength(1);
    expect(sink.stats().dropped.rejected).toBe(6);
    expect(errors.map((e) => e.code)).toEqual(['unauthorized']);
    expect(errors[0]?.message).toMatch(/serviceAccount.*project 4242/);

    now += 60_001;
    sink.write(eventMessage('After pause'));
    await sink.flush();
    expect(fake.events.map((e) => e.event)).toEqual(['After pause']);
    expectConserved(sink);
  });

  it('treats /track body status 0 as a refusal of the batch', async () => {
    const { sink, errors } = createSink({ endpoint: 'track' });
    fake.fail({ kind: 'status', status: 200, body: { status: 0, error: 'invalid data' } });
    sink.write(eventMessage());
    await sink.flush();
    expect(sink.stats().dropped.rejected).toBe(1);
    expect(errors[0]?.code).toBe('rejected_by_mixpanel');
    expect(errors[0]?.message).toContain('invalid data');
  });
});

describe('MixpanelSink hooks, stats and secrets', () => {
  it('counts producer-side drops so that tracked = delivered + dropped', async () => {
    const { sink } = createSink();
    sink.recordDrop('consent', 3);
    sink.write(eventMessage());
    await sink.flush();
    expect(sink.stats()).toMatchObject({ tracked: 4, enqueued: 1, delivered: 1, dropped: { consent: 3 } });
    expectConserved(sink);
  });

  it('reports a listener that throws, and still delivers', async () => {
    const { sink, errors } = createSink();
    sink.on('delivered', () => {
      throw new Error('listener bug');
    });
    const seen: number[] = [];
    const off = sink.on('delivered', (event) => seen.push(event.count));
    sink.write(eventMessage());
    await sink.flush();
    off();
    sink.write(eventMessage());
    await sink.flush();
    expect(seen).toEqual([1]);
    expect(errors.map((e) => [e.code, e.details.event])).toEqual([
      ['hook_failed', 'delivered'],
      ['hook_failed', 'delivered'],
    ]);
    expect(fake.events).toHaveLength(2);
  });

  it('keeps secrets out of every report and out of util.inspect', async () => {
    const { inspect } = await import('node:util');
    const { sink, errors } = createSink({
      projectId: 999,
      retry: { minDelayMs: 1, maxDelayMs: 1, maxRetries: 1 },
    });
    fake.fail(
      { kind: 'status', status: 503 },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 403 },
    );
    sink.write(eventMessage());
    await sink.flush();
    sink.write(eventMessage());
    await sink.flush();
    expect(errors.map((e) => e.code)).toEqual(['retries_exhausted', 'unauthorized']);
    const everything = errors
      .map((e) => `${e.message} ${JSON.stringify(e.details)} ${inspect(e)}`)
      .join('\n');
    const basicValue = Buffer.from(`${SERVICE_ACCOUNT.username}:${SERVICE_ACCOUNT.secret}`).toString(
      'base64',
    );
    for (const secret of [SERVICE_ACCOUNT.secret, basicValue]) {
      expect(everything).not.toContain(secret);
      expect(inspect(sink, { depth: 10, showHidden: true })).not.toContain(secret);
    }
  });

  it('closes every sink that handles a signal, and leaves ending the process to an app that listens too', async () => {
    // The app's own listener: with it present, idstitch must not re-raise the signal (which would
    // end this test process).
    const appListener = () => {};
    process.on('SIGUSR2', appListener);
    try {
      const first = createSink({ handleSignals: ['SIGUSR2'] });
      const second = createSink({ handleSignals: ['SIGUSR2'] });
      first.sink.write(eventMessage('First'));
      second.sink.write(eventMessage('Second'));
      process.emit('SIGUSR2', 'SIGUSR2');
      await Promise.all([first.sink.close(), second.sink.close()]);
      expect(fake.events.map((e) => e.event).sort()).toEqual(['First', 'Second']);
      first.sink.write(eventMessage('Late'));
      expect(first.sink.stats().dropped.after_close).toBe(1);
      expect(process.listeners('SIGUSR2')).toEqual([appListener]);
    } finally {
      process.removeListener('SIGUSR2', appListener);
    }
  });

  it('installs signal handlers only when asked, and removes them on close', async () => {
    const before = process.listenerCount('SIGTERM');
    const { sink } = createSink({ handleSignals: true });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    expect(process.listenerCount('SIGINT')).toBeGreaterThan(0);
    await sink.close();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    createSink();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
