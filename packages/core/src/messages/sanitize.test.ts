import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIXPANEL_LIMITS } from './limits.js';
import { sanitizeProperties } from './sanitize.js';

describe('sanitizeProperties', () => {
  it('keeps plain JSON values untouched and reports nothing', () => {
    const input = {
      plan: 'pro',
      seats: 3,
      trial: false,
      note: null,
      tags: ['a', 'b'],
      address: { city: 'Lyon' },
    };
    expect(sanitizeProperties(input)).toMatchObject({ properties: input, issues: [] });
  });

  it('converts what JSON cannot carry and says so', () => {
    const when = new Date('2026-03-04T05:06:07.000Z');
    const { properties, issues } = sanitizeProperties({
      big: 12345678901234567890n,
      when,
      nan: Number.NaN,
      inf: Number.NEGATIVE_INFINITY,
      fn: () => 1,
      sym: Symbol('x'),
      skipped: undefined,
      set: new Set([1, 2]),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [{}, 2],
      ]),
      lone: 'a\uD800b',
    });
    expect(properties).toEqual({
      big: '12345678901234567890',
      when: '2026-03-04T05:06:07.000Z',
      nan: null,
      inf: null,
      set: [1, 2],
      map: { a: 1 },
      lone: 'a\uFFFDb',
    });
    expect(issues.map((issue) => issue.path).sort()).toEqual(['fn', 'inf', 'lone', 'map', 'nan', 'sym']);
  });

  it('drops prototype keys without touching any prototype', () => {
    const { properties, issues } = sanitizeProperties(
      JSON.parse('{"__proto__":{"admin":true},"a":{"constructor":{"prototype":{"x":1}}}}'),
    );
    expect(Object.getPrototypeOf(properties)).toBe(Object.prototype);
    expect((properties as { admin?: boolean }).admin).toBeUndefined();
    expect(properties).toEqual({ a: {} });
    expect(issues).toEqual([
      { path: '__proto__', reason: 'dropped: prototype key' },
      { path: 'a.constructor', reason: 'dropped: prototype key' },
    ]);
  });

  it('replaces cycles and drops nesting deeper than Mixpanel allows', () => {
    const root: Record<string, unknown> = { deep: { l2: { l3: { l4: { l5: 'too deep' } } } } };
    root.self = root;
    const { properties, issues } = sanitizeProperties(root);
    expect(properties).toEqual({ deep: { l2: { l3: {} } }, self: '[Circular]' });
    expect(issues.map((issue) => issue.path)).toEqual(['deep.l2.l3.l4', 'self']);
  });

  it('applies the count, length and size limits', () => {
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(sanitizeProperties(many).properties)).toHaveLength(MIXPANEL_LIMITS.maxProperties);
    expect(sanitizeProperties({ s: 'x'.repeat(10_000) }).properties.s).toHaveLength(255);
    expect(sanitizeProperties({ emoji: `${'x'.repeat(254)}😀` }).properties.emoji).toBe('x'.repeat(254));
    expect(sanitizeProperties({ list: Array.from({ length: 1000 }, () => 1) }).properties.list).toHaveLength(
      255,
    );
    const bulky = { blob: Array.from({ length: 200 }, () => 'y'.repeat(100)) };
    expect(sanitizeProperties(bulky)).toMatchObject({ properties: {}, issues: [{ path: 'blob' }] });
  });

  it('refuses non-object property bags', () => {
    for (const input of ['x', 1, [1, 2], true]) {
      expect(sanitizeProperties(input)).toMatchObject({ properties: {}, issues: [{ path: '(root)' }] });
    }
  });

  it('survives getters and proxies that throw', () => {
    const trap = Object.defineProperty({ ok: 1 }, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(sanitizeProperties(trap).properties).toEqual({ ok: 1 });
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('proxy');
        },
      },
    );
    expect(sanitizeProperties(proxy).properties).toEqual({});
  });

  it('always returns JSON that round-trips, for any input (10 000 runs)', () => {
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withTypedArray: true,
          withSparseArray: true,
          maxDepth: 5,
        }),
        (input) => {
          const { properties } = sanitizeProperties(input);
          expect(JSON.parse(JSON.stringify(properties))).toEqual(properties);
        },
      ),
      { numRuns: 10_000 },
    );
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
  });
});
