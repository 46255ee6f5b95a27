import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createIdstitch } from '../idstitch.js';
import { IDENTITY_FIELDS } from '../messages/sanitize.js';
import type { OutgoingMessage } from '../messages/types.js';
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
    ...IDENTITY_FIELDS,
  ),
  fc.string({ maxLength: 300 }),
);
/** A body that tries to choose who the message is about: every value is marked so the check can find it. */
const FORGED = 'forged-identity';
const forgedIdentity = fc.dictionary(
  fc.constantFrom(...IDENTITY_FIELDS),
  fc.constantFrom(FORGED, `${FORGED}@example.com`, `$device:${FORGED}`),
  { minKeys: 1 },
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
  forgedIdentity,
  fc
    .tuple(fc.dictionary(hostileKey, tree, { maxKeys: 4 }), forgedIdentity)
    .map(([rest, forged]) => ({ ...rest, ...forged })),
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
    /** `forUser` / `forDevice`: the background trackers, which have no request to take identity from. */
    background: (userId?: unknown) =>
      userId === undefined
        ? engine.forDevice('3f0c8a9e-8f3b-4b55-9a53-7a3c3c6d2b10')
        : engine.forUser(userId as string),
  };
}

/** Identity fields of a message whose value a caller's property object chose. */
function forgedIdentityFields(message: OutgoingMessage): string[] {
  const found: string[] = [];
  const check = (object: unknown, path: string) => {
    if (object === null || typeof object !== 'object') return;
    for (const key of IDENTITY_FIELDS) {
      const value = (object as Record<string, unknown>)[key];
      if (typeof value === 'string' && value.includes(FORGED)) found.push(`${path}${key}`);
    }
  };
  const payload = message.payload as unknown as Record<string, unknown>;
  if (message.kind === 'event') check(payload.properties, 'properties.');
  else {
    check(payload, '');
    for (const [operation, value] of Object.entries(payload)) {
      if (operation.startsWith('$')) check(value, `${operation}.`);
    }
    check((payload.$append as Record<string, unknown> | undefined)?.$transactions, '$append.$transactions.');
  }
  return found;
}

/**
 * Runs `call` against fresh trackers and checks: no throw, every produced message valid and serialisable, and
 * no identity field chosen by the input.
 */
function checkEntryPoint<T>(
  label: string,
  arbitrary: fc.Arbitrary<T>,
  call: (tracker: Tracker, input: T) => void,
  idMerge: IdMergeMode = 'simplified',
  source: 'request' | 'background' = 'request',
) {
  it(`${label} never throws and only emits valid messages (${RUNS} runs)`, () => {
    const { sink, unexpected, tracker: requestTracker, background } = harness(idMerge);
    const tracker = source === 'request' ? requestTracker : background;
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
          expect(forgedIdentityFields(message)).toEqual([]);
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
  checkEntryPoint(
    'forUser / forDevice track',
    fc.tuple(anyInput, anyInput),
    (t, [name, props]) => {
      t.register(props as never);
      t.track(name as string, props as never);
      t.people.set(props as never);
    },
    'simplified',
    'background',
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
  checkEntryPoint(
    'people.set(identity field, value)',
    fc.tuple(fc.constantFrom(...IDENTITY_FIELDS), fc.constantFrom(FORGED)),
    (t, [name, value]) => {
      t.people.set(name, value);
      t.identify('user-2');
    },
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
