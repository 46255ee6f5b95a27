/**
 * The retry table, in the style of Segment's publisher tests (T01–T22): one row per response a batch
 * can meet, asserting how many attempts were made, how long each wait was (on a recording clock, no
 * real sleeping), what reached Mixpanel, what was dropped and why, and what the app was told.
 */
import type { DropReason, IdstitchError, MixpanelSinkOptions } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, type ScriptedFault, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage, recordingClock } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectConserved } from './support.js';

const TOKEN = 'table-token';
const BATCH = 3;

interface Row {
  /** Faults for the successive requests; receives the batch's `$insert_id`s. */
  faults: (ids: string[]) => ScriptedFault[];
  options?: Partial<MixpanelSinkOptions>;
  /** Runs before anything is written. */
  before?: (fake: FakeMixpanel) => Promise<void>;
  /** Runs inside the `index`-th backoff wait. */
  onSleep?: (fake: FakeMixpanel, index: number) => Promise<void>;
  /** HTTP requests the sink made. */
  attempts: number;
  /** Backoff waits, in ms (random pinned to 0: no jitter). */
  waits: number[];
  delivered: number;
  dropped?: Partial<Record<DropReason, number>>;
  /** `onError` codes, in order. */
  told: string[];
  /** The body of every attempt is the same bytes (false when 413 splits the batch). */
  identicalBodies?: boolean;
}

const status = (
  code: number,
  extra: Partial<Extract<ScriptedFault, { kind: 'status' }>> = {},
): ScriptedFault => ({
  kind: 'status',
  status: code,
  ...extra,
});
const times = (n: number, fault: ScriptedFault): ScriptedFault[] => Array.from({ length: n }, () => fault);

let clockStart = 0;

const rows: Record<string, Row> = {
  '200 OK': { faults: () => [], attempts: 1, waits: [], delivered: 3, told: [] },
  '400 strict partial, failed_records by index + insert_id': {
    faults: (ids) => [{ kind: 'refuse', insertIds: [ids[1] as string], key: 'insert_id' }],
    attempts: 1,
    waits: [],
    delivered: 2,
    dropped: { rejected: 1 },
    told: ['rejected_by_mixpanel'],
  },
  '400 strict partial, failed_records by $insert_id only': {
    faults: (ids) => [
      {
        kind: 'refuse',
        insertIds: [ids[0] as string, ids[2] as string],
        key: '$insert_id',
        withIndex: false,
      },
    ],
    attempts: 1,
    waits: [],
    delivered: 1,
    dropped: { rejected: 2 },
    told: ['rejected_by_mixpanel', 'rejected_by_mixpanel'],
  },
  '400 without failed_records': {
    faults: () => [status(400, { body: { code: 400, error: 'malformed', status: 'Bad Request' } })],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '400 whose failed_records names no record of the batch': {
    // Mixpanel said records failed, but none of the batch's: nothing says which were ingested, so the
    // batch is not counted delivered; it is dropped as rejected and reported with the response.
    faults: () => [
      status(400, {
        body: {
          code: 400,
          error: 'some data points in the request failed validation',
          status: 'Bad Request',
          num_records_imported: 0,
          failed_records: [
            { index: 7, insert_id: 'not-in-this-batch', field: 'properties.time', message: 'too old' },
          ],
        },
      }),
    ],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '400 whose failed_records entries name nothing': {
    faults: () => [
      status(400, {
        body: { code: 400, status: 'Bad Request', failed_records: [{ field: 'properties', message: 'bad' }] },
      }),
    ],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '401 Unauthorized': {
    faults: () => [status(401)],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['unauthorized'],
  },
  '403 Forbidden': {
    faults: () => [status(403)],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['unauthorized'],
  },
  '404 Not Found': {
    faults: () => [status(404)],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '408 Request Timeout, then OK': {
    faults: () => [status(408)],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '413 once: split in halves, both delivered': {
    faults: () => [status(413)],
    attempts: 3,
    waits: [],
    delivered: 3,
    told: [],
    identicalBodies: false,
  },
  '413 always: halved down to single messages, each dropped': {
    faults: () => times(5, status(413)),
    attempts: 5,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['message_too_large', 'message_too_large', 'message_too_large'],
    identicalBodies: false,
  },
  '429 without Retry-After, twice, then OK': {
    faults: () => times(2, status(429)),
    attempts: 3,
    waits: [2000, 4000],
    delivered: 3,
    told: [],
  },
  '429 with Retry-After in seconds': {
    faults: () => [status(429, { retryAfter: 7 })],
    attempts: 2,
    waits: [7000],
    delivered: 3,
    told: [],
  },
  '429 with Retry-After as an HTTP date': {
    faults: () => [status(429, { retryAfter: new Date(clockStart + 30_000).toUTCString() })],
    attempts: 2,
    waits: [30_000],
    delivered: 3,
    told: [],
  },
  '429 with an hour-long Retry-After: capped at 300 s': {
    faults: () => [status(429, { retryAfter: 3600 })],
    attempts: 2,
    waits: [300_000],
    delivered: 3,
    told: [],
  },
  '500 Internal Server Error, then OK': {
    faults: () => [status(500)],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '501 Not Implemented: not retried': {
    faults: () => [status(501)],
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '502 Bad Gateway, then OK': {
    faults: () => [status(502)],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '503 Service Unavailable, then OK': {
    faults: () => [status(503)],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '504 Gateway Timeout, then OK': {
    faults: () => [status(504)],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '503 forever: 1 + maxRetries attempts, then given up': {
    faults: () => times(5, status(503)),
    attempts: 5,
    waits: [2000, 4000, 8000, 16_000],
    delivered: 0,
    dropped: { retries_exhausted: 3 },
    told: ['retries_exhausted'],
  },
  '503 forever with a 10 s retry budget: stops before overrunning it': {
    faults: () => times(5, status(503)),
    options: { retry: { maxDurationMs: 10_000, maxRetries: 4 } },
    attempts: 3,
    waits: [2000, 4000],
    delivered: 0,
    dropped: { retries_exhausted: 3 },
    told: ['retries_exhausted'],
  },
  'connection refused twice, then the server is back': {
    faults: () => [],
    before: (fake) => fake.goDown(),
    onSleep: async (fake, index) => {
      if (index === 1) await fake.comeBack();
    },
    attempts: 3,
    waits: [2000, 4000],
    delivered: 3,
    told: [],
  },
  'connection reset before the response': {
    faults: () => [{ kind: 'reset' }],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  'connection reset mid-response, after Mixpanel ingested': {
    faults: () => [{ kind: 'resetMidResponse' }],
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  'timeout: no response within requestTimeoutMs': {
    faults: () => [{ kind: 'hang' }],
    options: { requestTimeoutMs: 150 },
    attempts: 2,
    waits: [2000],
    delivered: 3,
    told: [],
  },
  '/track 200 with body 0': {
    faults: () => [status(200, { body: '0' })],
    options: { endpoint: 'track' },
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
  '/track 200 with verbose status 0': {
    faults: () => [status(200, { body: { status: 0, error: 'some data points failed' } })],
    options: { endpoint: 'track' },
    attempts: 1,
    waits: [],
    delivered: 0,
    dropped: { rejected: 3 },
    told: ['rejected_by_mixpanel'],
  },
};

let fake: FakeMixpanel;
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: TOKEN, apiSecret: 'table-secret' });
});
afterAll(() => fake.close());

describe('retry table', () => {
  it.each(Object.entries(rows))('%s', async (_, row) => {
    fake.clear();
    await row.before?.(fake);
    const clock = recordingClock(undefined, (_ms, index) => row.onSleep?.(fake, index));
    clockStart = clock.now();
    const told: IdstitchError[] = [];
    const retries: number[] = [];
    const sink = new MixpanelSink({
      token: TOKEN,
      apiSecret: 'table-secret',
      host: fake.url,
      concurrency: 1,
      flushIntervalMs: 60_000,
      clock,
      random: () => 0,
      ...row.options,
      retry: { maxRetries: 4, ...row.options?.retry },
      onError: (error) => told.push(error),
    });
    sink.on('retry', (event) => retries.push(event.attempt));
    const messages = Array.from({ length: BATCH }, (_, i) => eventMessage('Row Event', { i }));
    const ids = messages.map((m) => m.payload.properties.$insert_id);
    fake.fail(...row.faults(ids));
    for (const message of messages) sink.write(message);
    await sink.flush();

    const stats = sink.stats();
    expect(stats.requests, 'attempts').toBe(row.attempts);
    expect(clock.delays, 'waits').toEqual(row.waits);
    expect(retries, 'retry events').toEqual(row.waits.map((_, i) => i + 1));
    expect(stats.delivered, 'delivered').toBe(row.delivered);
    expect(fake.insertIds().size, 'distinct events at Mixpanel').toBe(row.delivered);
    const dropped = Object.fromEntries(Object.entries(stats.dropped).filter(([, n]) => n > 0));
    expect(dropped, 'dropped').toEqual(row.dropped ?? {});
    expect(
      told.map((e) => e.code),
      'onError',
    ).toEqual(row.told);
    expect(stats.retried, 'retried messages').toBe(row.waits.length * BATCH);

    // Every attempt carried the events exactly as they were written: same $insert_id, same time.
    const seen = fake.requests.flatMap((request) =>
      (JSON.parse(request.body.toString()) as { properties: { $insert_id: string; time: number } }[]).map(
        (e) => [e.properties.$insert_id, e.properties.time],
      ),
    );
    const written = new Map(
      messages.map((m) => [m.payload.properties.$insert_id, m.payload.properties.time]),
    );
    for (const [id, time] of seen) expect(written.get(id as string)).toBe(time);
    if (row.identicalBodies !== false && fake.requests.length > 1) {
      const first = fake.requests[0]?.body as Buffer;
      for (const request of fake.requests) expect(request.body.equals(first)).toBe(true);
    }

    await sink.close();
    expectConserved(sink);
  });
});
