import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createIdstitch } from '../create.js';
import { validateMessage } from '../messages/validate.js';
import type { IdMergeMode } from '../options.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import type { Tracker } from './types.js';

const RUNS = 10_000;

/** Values a careless or hostile caller might pass: cycles, BigInt, NaN, functions, huge strings, deep nesting. */
const hostileKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '',
    'time',
    '$insert_id',
    'distinct_id',
  ),
  fc.string({ maxLength: 300 }),
);
const hostileLeaf = fc.oneof(
  fc.anything({
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withTypedArray: true,
    maxDepth: 2,
  }),
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -0,
    () => 1,
    Symbol('s'),
    'x'.repeat(100_000),
    '\uD800lone',
    new Date(Number.NaN),
  ),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileLeaf,
    fc.array(tie('tree'), { maxLength: 5 }),
    fc.dictionary(hostileKey, tie('tree'), { maxKeys: 6 }),
  ),
}));
const hostileProperties = fc.oneof(
  tree,
  fc.dictionary(hostileKey, tree, { maxKeys: 8 }),
  fc.constant(JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')),
  fc.constant(
    (() => {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic.self = cyclic;
      cyclic.list = [cyclic];
      return cyclic;
    })(),
  ),
  fc.constant(
    new Proxy(
      { [fc.toStringMethod]: () => 'hostileProxy' },
      {
        ownKeys: () => {
          throw new Error('hostile proxy');
        },
      },
    ),
  ),
);
const anyInput = fc.oneof(
  hostileProperties,
  fc.string({ maxLength: 300 }),
  fc.integer(),
  fc.constantFrom(undefined, null, '', 'null', '$device:x'),
);

const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

function harness(idMerge: IdMergeMode) {
  const sink = new MemorySink();
  const unexpected: Error[] = [];
  const engine = createIdstitch<{ userId?: unknown }>(
    {
      sink,
      idMerge,
      // Bad input must be handled on purpose, never by the last-resort guard.
      onError: (error) => {
        if (error.message.includes('unexpected failure')) unexpected.push(error);
      },
      cookie: { secret: 'property-test-secret-0123' },
    },
    { resolveUserId: (request) => request.userId },
  );
  return {
    sink,
    unexpected,
    tracker: (userId?: unknown) => engine.handle(fakeRequestPort({ request: { userId } })).tracker,
  };
}

/** Runs `call` against fresh trackers and checks: no throw, every produced message valid and serialisable. */
function checkEntryPoint<T>(
  label: string,
  arbitrary: fc.Arbitrary<T>,
  call: (tracker: Tracker, input: T) => void,
  idMerge: IdMergeMode = 'simplified',
) {
  it(`${label} never throws and only emits valid messages (${RUNS} runs)`, () => {
    const { sink, unexpected, tracker } = harness(idMerge);
    fc.assert(
      fc.property(fc.oneof(fc.constant(undefined), fc.constant('user-1')), arbitrary, (userId, input) => {
        sink.clear();
        unexpected.length = 0;
        expect(() => call(tracker(userId), input)).not.toThrow();
        expect(
          unexpected.map((error) =>
            String((error.cause as Error)?.stack)
              .split('\n')
              .slice(0, 3)
              .join(' | '),
          ),
        ).toEqual([]);
        for (const message of sink.messages) {
          expect(validateMessage(message)).toBeUndefined();
          expect(() => JSON.stringify(message.payload)).not.toThrow();
        }
      }),
      { numRuns: RUNS },
    );
  });
}

describe('every public tracker entry point under hostile input', () => {
  afterAll(() => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  checkEntryPoint('track', fc.tuple(anyInput, anyInput), (t, [name, props]) =>
    t.track(name as string, props as never),
  );
  checkEntryPoint('identify', fc.tuple(anyInput, anyInput), (t, [id, traits]) =>
    t.identify(id as string, traits as never),
  );
  checkEntryPoint('register', anyInput, (t, props) => {
    t.register(props as never);
    t.track('after register');
  });
  checkEntryPoint('people.set', fc.tuple(anyInput, anyInput), (t, [a, b]) => t.people.set(a as string, b));
  checkEntryPoint('people.setOnce', fc.tuple(anyInput, anyInput), (t, [a, b]) =>
    t.people.setOnce(a as string, b),
  );
  checkEntryPoint('people.increment', fc.tuple(anyInput, anyInput), (t, [a, b]) =>
    t.people.increment(a as string, b as number),
  );
  checkEntryPoint('people.append', fc.tuple(anyInput, anyInput), (t, [a, b]) =>
    t.people.append(a as string, b),
  );
  checkEntryPoint('people.union', fc.tuple(anyInput, anyInput), (t, [a, b]) =>
    t.people.union(a as string, b as unknown[]),
  );
  checkEntryPoint('people.remove', fc.tuple(anyInput, anyInput), (t, [a, b]) =>
    t.people.remove(a as string, b),
  );
  checkEntryPoint('people.unset', anyInput, (t, a) => t.people.unset(a as string));
  checkEntryPoint('trackCharge', fc.tuple(anyInput, anyInput), (t, [amount, props]) =>
    t.trackCharge(amount as number, props as never),
  );
  checkEntryPoint('group', fc.tuple(anyInput, anyInput, anyInput), (t, [key, id, traits]) =>
    t.group(key as string, id as string, traits as never),
  );
  checkEntryPoint('alias (original)', anyInput, (t, id) => t.alias(id as string), 'original');
  checkEntryPoint(
    'merge (original)',
    fc.tuple(anyInput, anyInput),
    (t, [a, b]) => t.merge(a as string, b as string),
    'original',
  );
});
