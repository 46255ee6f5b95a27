// The per-message `settled` callback of `MixpanelSink.write`, which the Redis outbox relies on to
// acknowledge a stream entry only once Mixpanel accepted it.
import { type FakeMixpanel, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IdstitchError } from '../../errors.js';
import type { MixpanelMessageOutcome } from './events.js';
import type { MixpanelSinkOptions } from './options.js';
import { MixpanelSink } from './sink.js';

const TOKEN = 'fake-token';
let fake: FakeMixpanel;
const sinks: MixpanelSink[] = [];

beforeAll(async () => {
  fake = await startFakeMixpanel({ token: TOKEN, apiSecret: 'api-secret' });
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.close(0)));
  fake.clear();
});
afterAll(() => fake.close());

function createSink(options: Partial<MixpanelSinkOptions> = {}) {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: TOKEN,
    apiSecret: 'api-secret',
    host: fake.url,
    flushIntervalMs: 60_000,
    retry: { minDelayMs: 1, maxDelayMs: 2, maxRetries: 1 },
    onError: (error) => errors.push(error),
    ...options,
  });
  sinks.push(sink);
  return { sink, errors };
}

describe('MixpanelSink write(message, settled)', () => {
  it('tells each message how it ended: delivered, refused in strict mode, invalid before sending', async () => {
    const { sink } = createSink();
    const good = eventMessage('Good');
    const refused = eventMessage('Refused');
    const outcomes = new Map<string, MixpanelMessageOutcome[]>();
    const record = (name: string) => (outcome: MixpanelMessageOutcome) =>
      outcomes.set(name, [...(outcomes.get(name) ?? []), outcome]);
    fake.fail({ kind: 'refuse', insertIds: [refused.payload.properties.$insert_id] });
    sink.write(good, record('good'));
    sink.write(refused, record('refused'));
    sink.write(eventMessage(''), record('invalid'));
    expect(outcomes.get('invalid')).toEqual(['invalid']);
    await sink.flush();
    expect(Object.fromEntries(outcomes)).toEqual({
      good: ['delivered'],
      refused: ['rejected'],
      invalid: ['invalid'],
    });
  });

  it('tells retries_exhausted apart from a credentials refusal, which is "unauthorized"', async () => {
    const { sink } = createSink();
    const outcomes: MixpanelMessageOutcome[] = [];
    fake.fail({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    sink.write(eventMessage('Lost'), (outcome) => outcomes.push(outcome));
    await sink.flush();
    fake.fail({ kind: 'status', status: 401 });
    sink.write(eventMessage('Refused credentials'), (outcome) => outcomes.push(outcome));
    await sink.flush();
    // The endpoint is paused now: a new message is dropped at once, told the same way.
    sink.write(eventMessage('While paused'), (outcome) => outcomes.push(outcome));
    expect(outcomes).toEqual(['retries_exhausted', 'unauthorized', 'unauthorized']);
    expect(sink.stats().dropped.rejected).toBe(2);
  });

  it('reports a settled callback that throws and keeps delivering', async () => {
    const { sink, errors } = createSink();
    sink.write(eventMessage('A'), () => {
      throw new Error('boom');
    });
    sink.write(eventMessage('B'));
    await sink.flush();
    expect(fake.events).toHaveLength(2);
    expect(errors.map((error) => error.code)).toEqual(['hook_failed']);
  });
});
