import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { arrayBytes } from './queue.js';
import { type EncodableMessage, encodeBody, jsonArray } from './transport.js';

/** A deterministic generator, so that a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const SAMPLES = [
  'plain',
  'é',
  '日本語',
  '😀',
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  'a\ud83d', // high surrogate at the end
  '"quoted" \\ back',
  '\u0000\u001f\n\t',
  '\u2028\u2029',
  'ÿ', // Latin-1 but not ASCII: two bytes in UTF-8
];
const NUMBERS = [0, -0, 1.5, 1e21, 1e-7, Number.MAX_SAFE_INTEGER, 2 ** 64, -1.7976931348623157e308, 5e-324];

function fuzzValue(next: () => number): unknown {
  const pick = next();
  if (pick < 0.35) {
    let text = '';
    for (let i = Math.floor(next() * 4); i >= 0; i -= 1) text += SAMPLES[Math.floor(next() * SAMPLES.length)];
    return text;
  }
  if (pick < 0.6) return NUMBERS[Math.floor(next() * NUMBERS.length)];
  if (pick < 0.7) return next() < 0.5;
  if (pick < 0.75) return null;
  if (pick < 0.85) return [fuzzValue(next), fuzzValue(next)];
  return { nested: fuzzValue(next) };
}

/** As the sink queues a message: its JSON, and the UTF-8 length of that JSON. */
function queued(value: unknown): EncodableMessage {
  const json = JSON.stringify(value);
  return { json, bytes: Buffer.byteLength(json, 'utf8') };
}

function fuzzMessages(seed: number, count: number): EncodableMessage[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, i) => {
    const properties: Record<string, unknown> = { distinct_id: `user-${i}`, time: 1_700_000_000_000 + i };
    for (let k = Math.floor(next() * 6); k > 0; k -= 1) {
      properties[String(SAMPLES[Math.floor(next() * SAMPLES.length)]) + k] = fuzzValue(next);
    }
    return queued({ event: String(fuzzValue(next)), properties });
  });
}

/** What the sink sent before: the joined JSON, encoded by the Web-standard encoder. */
function reference(messages: readonly EncodableMessage[]): Uint8Array {
  return new TextEncoder().encode(`[${messages.map((message) => message.json).join(',')}]`);
}

const bytesOf = (messages: readonly EncodableMessage[]) =>
  arrayBytes(
    messages.length,
    messages.reduce((sum, message) => sum + message.bytes, 0),
  );

describe('request body encoding', () => {
  it('writes the same bytes as joining the JSON and encoding it, for fuzzed messages', () => {
    for (let seed = 1; seed <= 200; seed += 1) {
      const messages = fuzzMessages(seed, 1 + (seed % 40));
      const body = jsonArray(messages, bytesOf(messages));
      expect(Buffer.from(body).equals(Buffer.from(reference(messages))), `seed ${seed}`).toBe(true);
    }
  });

  it('replaces a lone surrogate the way UTF-8 encoding of the JSON does', () => {
    // JSON.stringify escapes lone surrogates; a producer's JSON that holds one raw is still sent as TextEncoder would.
    const raw = { json: '"\ud800"', bytes: Buffer.byteLength('"\ud800"', 'utf8') };
    const messages = [raw, queued('ascii'), queued('ÿ')];
    expect(Buffer.from(jsonArray(messages, bytesOf(messages))).equals(Buffer.from(reference(messages)))).toBe(
      true,
    );
  });

  it('falls back to the exact encoding when a message states a wrong length', () => {
    const good = queued({ a: 'é' });
    for (const wrong of [good.bytes - 1, good.bytes + 1, good.json.length]) {
      const messages = [queued(1), { json: good.json, bytes: wrong }, queued('z')];
      const stated = bytesOf(messages);
      const body = jsonArray(messages, stated);
      expect(Buffer.from(body).equals(Buffer.from(reference(messages)))).toBe(true);
    }
  });

  it('gzips a body that gunzips to the same bytes, reusing no memory across bodies in flight', async () => {
    const first = fuzzMessages(7, 300);
    const second = fuzzMessages(8, 500);
    const [a, b] = await Promise.all([
      encodeBody(first, bytesOf(first), true),
      encodeBody(second, bytesOf(second), true),
    ]);
    expect(gunzipSync(a).equals(Buffer.from(reference(first)))).toBe(true);
    expect(gunzipSync(b).equals(Buffer.from(reference(second)))).toBe(true);
    // A third body after both finished reuses a buffer; the earlier results are untouched by it.
    const third = fuzzMessages(9, 50);
    const c = await encodeBody(third, bytesOf(third), true);
    expect(gunzipSync(c).equals(Buffer.from(reference(third)))).toBe(true);
    expect(gunzipSync(a).equals(Buffer.from(reference(first)))).toBe(true);
  });

  it('sends the JSON as it is when the endpoint takes no gzip', async () => {
    const messages = fuzzMessages(3, 20);
    const body = await encodeBody(messages, bytesOf(messages), false);
    expect(Buffer.from(body).equals(Buffer.from(reference(messages)))).toBe(true);
  });
});
