import { eventMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { OutgoingMessage } from '../../messages/types.js';
import type { MixpanelSinkOptions } from './options.js';
import { MixpanelSink } from './sink.js';

// Nothing listens there: these tests never let a batch go (no flush, a long interval) and close at once.
const sinks: MixpanelSink[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(sinks.splice(0).map((sink) => sink.close(0)));
});

function createSink(options: Partial<MixpanelSinkOptions> = {}): MixpanelSink {
  const sink = new MixpanelSink({
    token: 'fake-token',
    apiSecret: 'api-secret',
    host: 'http://127.0.0.1:9/',
    flushIntervalMs: 60_000,
    spool: false,
    onError: () => {},
    ...options,
  });
  sinks.push(sink);
  return sink;
}

/** The serialised size the sink counts for a message, measured on a sink with room. */
function bytesOf(message: OutgoingMessage): number {
  const sink = createSink();
  sink.write(message);
  expect(sink.stats().queued).toBe(1);
  return sink.stats().queuedBytes;
}

/** A sink of `budget` bytes (its least is 1024) already holding an event that leaves exactly `room` bytes. */
function sinkWithRoom(room: number, budget = 2048): MixpanelSink {
  const filler = (n: number) => eventMessage('F', { padding: 'x'.repeat(n) });
  const padding = budget - room - bytesOf(filler(0));
  const sink = createSink({ maxQueueBytes: budget });
  sink.write(filler(padding));
  expect(sink.stats()).toMatchObject({ queued: 1, queuedBytes: budget - room });
  return sink;
}

describe('MixpanelSink byte budget under drop_newest', () => {
  it('drops an event that cannot fit the bytes left without serialising it', () => {
    const big = () => eventMessage('E', { padding: 'x'.repeat(300) });
    const size = bytesOf(big());
    const sink = createSink({ maxQueueBytes: size * 3 + 100 });
    for (let i = 0; i < 3; i += 1) sink.write(big());
    expect(sink.stats().queued).toBe(3);
    const next = big();
    const stringify = vi.spyOn(JSON, 'stringify');
    sink.write(next);
    expect(stringify).not.toHaveBeenCalled();
    expect(sink.stats()).toMatchObject({ queued: 3, tracked: 4, dropped: { queue_overflow: 1 } });
  });

  // The shortcut relies on a lower bound of the serialised size: a message that exactly fills the budget must
  // still be accepted, whatever its properties hold (were the bound ever above the real size, it would be dropped).
  const odd: Record<string, () => OutgoingMessage> = {
    'no properties of its own': () => eventMessage('E'),
    'its own token property': () => eventMessage('E', { token: 'not-the-project-token-and-much-longer' }),
    'unicode, escapes and a lone surrogate': () =>
      eventMessage('Ünïcødé 🎉', { 'clé "é"': 'naïve \n\t "quoted" \\ 🎉', lone: 'a\ud800b', emoji: '😀😀' }),
    'big numbers, booleans and null': () =>
      eventMessage('E', { big: 1.7976931348623157e308, small: 5e-324, neg: -0, yes: true, nothing: null }),
    'nested objects and arrays': () =>
      eventMessage('E', { nested: { a: [1, 'two', { three: null }] }, list: [] }),
    'a nested toJSON': () =>
      eventMessage('E', { when: new Date(0) as unknown as string, custom: { toJSON: () => 'x' } as never }),
  };
  for (const [name, make] of Object.entries(odd)) {
    it(`accepts an event that exactly fills the budget: ${name}`, () => {
      const message = make();
      const size = bytesOf(message);
      const sink = sinkWithRoom(size);
      sink.write(message);
      expect(sink.stats()).toMatchObject({ queued: 2, queuedBytes: 2048, droppedTotal: 0 });
      sink.write(make());
      expect(sink.stats()).toMatchObject({ queued: 2, dropped: { queue_overflow: 1 } });
    });
  }

  it('accepts a small event into the room a large one did not fit', () => {
    const small = eventMessage('E');
    const sink = sinkWithRoom(bytesOf(small));
    sink.write(eventMessage('E', { padding: 'x'.repeat(300) }));
    expect(sink.stats().dropped.queue_overflow).toBe(1);
    sink.write(small);
    expect(sink.stats()).toMatchObject({ queued: 2, queuedBytes: 2048 });
  });
});
