import { describe, expect, it } from 'vitest';
import { type HeldUpdateDropReason, MemoryIdentityStore } from './identity-store.js';

const KB50 = 'x'.repeat(50 * 1024);

describe('MemoryIdentityStore', () => {
  it('bounds held updates by bytes: 20 devices × 50 updates of 50 KB stay within the default budget', () => {
    const drops: [number, HeldUpdateDropReason][] = [];
    const store = new MemoryIdentityStore({
      onDrop: (_device, count, reason) => drops.push([count, reason]),
    });
    for (let device = 0; device < 20; device++) {
      for (let i = 0; i < 50; i++)
        store.hold(`device-${device}`, { $set: { blob: KB50, i }, heldAt: Date.now() });
    }
    let keptBytes = 0;
    let kept = 0;
    for (let device = 0; device < 20; device++) {
      for (const update of store.take(`device-${device}`)) {
        keptBytes += JSON.stringify(update).length;
        kept++;
      }
    }
    // UTF-16 in memory: two bytes a character, so at most 16 MiB of JSON text fits the 32 MiB budget.
    expect(keptBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    const dropped = drops
      .filter(([, reason]) => reason === 'byte budget')
      .reduce((sum, [count]) => sum + count, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(kept + dropped).toBe(1000);
    expect(store.stats().dropped['byte budget']).toBe(dropped);
    expect(store.stats().heldBytes).toBe(0);
  });

  it('drops the least recently active device first, and counts every drop by reason', () => {
    const update = (n: number) => ({ $set: { n: 'y'.repeat(30) }, heldAt: Date.now() - 10 + n });
    const one = 2 * JSON.stringify(update(0)).length + 128;
    const store = new MemoryIdentityStore({ maxBytes: 3 * one + 10 });
    store.hold('a', update(1));
    store.hold('b', update(2));
    store.hold('c', update(3));
    store.hold('a', update(4));
    expect(store.take('b')).toEqual([]);
    expect(store.take('a')).toHaveLength(2);
    expect(store.stats().dropped['byte budget']).toBe(1);
  });

  it('refuses one update larger than the whole budget, with a reason', () => {
    const reasons: string[] = [];
    const store = new MemoryIdentityStore({
      maxBytes: 1000,
      onDrop: (_d, _c, reason) => reasons.push(reason),
    });
    store.hold('a', { $set: { blob: 'z'.repeat(2000) }, heldAt: 1 });
    expect(store.take('a')).toEqual([]);
    expect(reasons).toEqual(['too large']);
  });
});
