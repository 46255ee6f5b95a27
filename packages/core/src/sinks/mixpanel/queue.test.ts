import { describe, expect, it } from 'vitest';
import { arrayBytes, PendingQueue, type QueuedMessage } from './queue.js';

const message = (seq: number, bytes = 10): QueuedMessage => ({
  seq,
  json: 'x'.repeat(bytes),
  bytes,
  insertId: undefined,
});

describe('PendingQueue', () => {
  it('takes at most a batch by count, oldest first', () => {
    const queue = new PendingQueue();
    for (let i = 1; i <= 5; i += 1) queue.push(message(i));
    expect(queue.take(2, 1_000_000).map((m) => m.seq)).toEqual([1, 2]);
    expect(queue.length).toBe(3);
    expect(queue.bytes).toBe(30);
  });

  it('takes at most a batch by JSON array bytes, brackets and commas included', () => {
    const queue = new PendingQueue();
    for (let i = 1; i <= 5; i += 1) queue.push(message(i, 10));
    // Three items: 30 + 2 brackets + 2 commas = 34 bytes.
    expect(arrayBytes(3, 30)).toBe(34);
    expect(queue.take(100, 34).map((m) => m.seq)).toEqual([1, 2, 3]);
    // Two items would be 23 bytes.
    expect(queue.take(100, 22).map((m) => m.seq)).toEqual([4]);
  });

  it('always takes one message, even one bigger than the byte limit', () => {
    const queue = new PendingQueue();
    queue.push(message(1, 500));
    expect(queue.take(10, 100)).toHaveLength(1);
  });

  it('knows when a full batch is waiting', () => {
    const queue = new PendingQueue();
    for (let i = 1; i <= 3; i += 1) queue.push(message(i, 10));
    expect(queue.hasFullBatch(3, 10_000)).toBe(true);
    expect(queue.hasFullBatch(4, 10_000)).toBe(false);
    expect(queue.hasFullBatch(4, 34)).toBe(true);
  });

  it('stays correct across many pushes and shifts (compaction)', () => {
    const queue = new PendingQueue();
    for (let i = 1; i <= 5000; i += 1) queue.push(message(i, 1));
    for (let i = 1; i <= 3000; i += 1) expect(queue.shift()?.seq).toBe(i);
    expect(queue.peek()?.seq).toBe(3001);
    expect(queue.length).toBe(2000);
    expect(queue.bytes).toBe(2000);
    expect(queue.drain().map((m) => m.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 3001));
    expect(queue.length).toBe(0);
  });
});
