import { describe, expect, it } from 'vitest';
import { ChunkedMessage, JsonChunks } from './chunks.js';
import { arrayBytes } from './queue.js';
import { type EncodableMessage, jsonArray } from './transport.js';

const SAMPLES = ['plain', 'é', '日本語', '😀', '"quoted" \\ back', '\u2028', 'ÿ', 'x'.repeat(3000)];

/** A deterministic generator, so that a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** JSON strings of events, some large enough to start a new chunk or to stay strings. */
function fuzzJson(seed: number, count: number): string[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, i) => {
    const properties: Record<string, unknown> = { distinct_id: `user-${i}` };
    for (let k = Math.floor(next() * 5); k > 0; k -= 1) {
      let text = '';
      for (let n = Math.floor(next() * 8); n >= 0; n -= 1)
        text += SAMPLES[Math.floor(next() * SAMPLES.length)];
      properties[`p${k}`] = text;
    }
    return JSON.stringify({ event: 'e', properties });
  });
}

/** Queues each JSON as admission does: into the chunks when it fits there, else as a string. */
function queue(
  chunks: JsonChunks,
  jsons: readonly string[],
  keep: (i: number) => boolean,
): EncodableMessage[] {
  const queued: EncodableMessage[] = [];
  jsons.forEach((json, i) => {
    const bytes = chunks.write(json);
    if (!keep(i)) return; // written tentatively, then dropped (too large, no room): never committed
    if (bytes < 0) {
      queued.push({ json, bytes: Buffer.byteLength(json, 'utf8') });
      return;
    }
    chunks.commit();
    queued.push(new ChunkedMessage(i, chunks.chunk, chunks.start, bytes, undefined, undefined, undefined));
  });
  return queued;
}

describe('JSON chunks', () => {
  it('hold the UTF-8 of each JSON, and bodies of any run of them are what joining the strings gives', () => {
    for (let seed = 1; seed <= 60; seed += 1) {
      const jsons = fuzzJson(seed, 1 + (seed % 50) * 4);
      const next = random(seed * 7);
      const kept = jsons.map(() => next() > 0.1);
      const messages = queue(new JsonChunks(), jsons, (i) => kept[i] as boolean);
      const expected = jsons.filter((_, i) => kept[i]);
      expect(
        messages.map((message) => message.json),
        `seed ${seed}`,
      ).toEqual(expected);
      expect(messages.map((message) => message.bytes)).toEqual(
        expected.map((json) => Buffer.byteLength(json)),
      );
      // Any slice (a batch), and every other message (what a split or partial delivery leaves).
      const from = Math.floor(next() * messages.length);
      const slices = [messages.slice(from), messages.filter((_, i) => i % 2 === 0)];
      for (const batch of slices) {
        const bytes = arrayBytes(
          batch.length,
          batch.reduce((sum, message) => sum + message.bytes, 0),
        );
        const body = Buffer.from(jsonArray(batch, bytes)).toString('utf8');
        expect(body, `seed ${seed}`).toBe(`[${batch.map((message) => message.json).join(',')}]`);
      }
    }
  });

  it('write an event token suffix in place of the closing characters', () => {
    const chunks = new JsonChunks();
    const json = JSON.stringify({ event: 'é', properties: { a: 1 } });
    const suffix = new TextEncoder().encode(',"token":"t"}}');
    const bytes = chunks.write(json, 2, suffix);
    chunks.commit();
    const message = new ChunkedMessage(1, chunks.chunk, chunks.start, bytes, undefined, undefined, undefined);
    expect(message.json).toBe('{"event":"é","properties":{"a":1,"token":"t"}}');
    expect(bytes).toBe(Buffer.byteLength(message.json));
  });
});
