import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IDENTITY_FIELDS,
  type SanitizeResult,
  sanitizeProperties,
  sanitizeWithoutFastPath,
} from './sanitize.js';

/** Keys an attacker-written body may carry, and ordinary ones so that the fast path runs long before it bails. */
const key = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('plan', 'section', 'amount', 'a', 'b', 'c', 'd', 'order_id', '$pathname'),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      '',
      'time',
      ...IDENTITY_FIELDS,
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom('k'.repeat(255), 'k'.repeat(256)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** Values the fast path takes, and everything it must hand to the walker. */
const value = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      undefined,
      'x'.repeat(255),
      'x'.repeat(256),
      `${'x'.repeat(254)}\uD83D\uDE00`,
      'a\uD800b',
      10n,
      () => 1,
      Symbol('s'),
      new Date(0),
      new Date(Number.NaN),
      new Set([1]),
      new Map([['k', 1]]),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
    }),
  },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 300 }) },
);

/**
 * An input object built with defineProperty, so `__proto__` is an own key as in `JSON.parse` output. Some values
 * sit behind getters (one throws), which count their calls: each path must read each value exactly once.
 */
const input = fc
  .array(fc.tuple(key, value, fc.constantFrom('data', 'data', 'data', 'getter', 'throwing')), {
    maxLength: 40,
  })
  .map((entries) => {
    const reads = { count: 0 };
    const target: Record<string, unknown> = {};
    for (const [name, raw, kind] of entries) {
      const descriptor: PropertyDescriptor =
        kind === 'data'
          ? { value: raw }
          : {
              get() {
                reads.count++;
                if (kind === 'throwing') throw new RangeError('no');
                return raw;
              },
            };
      Object.defineProperty(target, name, { ...descriptor, enumerable: true, configurable: true });
    }
    // fast-check prints a failing input; reading it through the getters would throw.
    const shown = () =>
      fc.stringify(entries.map(([name, raw, kind]) => [name, kind === 'data' ? raw : kind]));
    return { target, reads, [fc.toStringMethod]: shown };
  });

function run(
  sanitize: typeof sanitizeProperties,
  generated: { target: object; reads: { count: number } },
  options: object,
) {
  generated.reads.count = 0;
  const result: SanitizeResult = sanitize(generated.target, options);
  return { result, keys: Object.keys(result.properties), reads: generated.reads.count };
}

describe('the sanitiser fast path', () => {
  it.each([{}, { dropIdentityFields: true }, { truncateQuietly: true }])(
    'gives exactly what the walker gives, attacker input included (%j)',
    (options) => {
      fc.assert(
        fc.property(input, (generated) => {
          const fast = run(sanitizeProperties, generated, options);
          const slow = run(sanitizeWithoutFastPath, generated, options);
          // Same properties in the same order, same issues, same size estimate, same getter calls.
          expect(fast.keys).toEqual(slow.keys);
          expect(fast.result).toEqual(slow.result);
          expect(fast.reads).toBe(slow.reads);
          expect(Object.getPrototypeOf(fast.result.properties)).toBe(Object.prototype);
        }),
        { numRuns: 3000 },
      );
    },
  );

  it('takes a flat primitive object as it is, and hands over at the first value it does not handle', () => {
    const flat = { plan: 'pro', seats: 3, trial: false, note: null, zero: -0 };
    expect(sanitizeProperties(flat)).toEqual({
      properties: { plan: 'pro', seats: 3, trial: false, note: null, zero: 0 },
      issues: [],
      estimatedBytes: sanitizeWithoutFastPath(flat).estimatedBytes,
    });
    const body = JSON.parse(
      '{"plan":"pro","__proto__":{"admin":true},"distinct_id":"victim","n":NaN}'.replace('NaN', '1e999'),
    );
    const result = sanitizeProperties(body, { dropIdentityFields: true });
    expect(result).toEqual(sanitizeWithoutFastPath(body, { dropIdentityFields: true }));
    expect(result.properties).toEqual({ plan: 'pro', n: null });
    expect(result.issues.map((issue) => issue.path)).toEqual(['__proto__', 'distinct_id', 'n']);
  });
});
