/**
 * What `resolveUserId` returns is coerced to a user ID or refused with a reported reason; either way the
 * request's events are sent.
 */
import { describe, expect, it } from 'vitest';
import { createIdstitch } from '../create.js';
import type { IdstitchError } from '../errors.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import { normalizeUserId } from './request-identity.js';

function setup() {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const engine = createIdstitch<{ userId?: unknown }>(
    { sink, onError: (error) => errors.push(error), cookie: { secret: 'user-id-test-secret-0123' } },
    { resolveUserId: (request) => request.userId },
  );
  const run = (userId: unknown, cookie?: string) => {
    const scope = engine.handle(
      fakeRequestPort({ request: { userId }, cookies: cookie ? { idstitch_device: cookie } : {} }),
    );
    scope.tracker.track('Viewed');
    scope.tracker.track('Clicked');
    return scope.settle().find((write) => write.name === 'idstitch_device')?.value;
  };
  return { sink, errors, run };
}

describe('user IDs from resolveUserId', () => {
  it('coerces numbers and BigInts to their decimal text', () => {
    expect(normalizeUserId(42)).toEqual({ userId: '42' });
    expect(normalizeUserId(4.5)).toEqual({ userId: '4.5' });
    expect(normalizeUserId(12345678901234567890n)).toEqual({ userId: '12345678901234567890' });
    expect(normalizeUserId('  u1 ')).toEqual({ userId: 'u1' });
  });

  it.each<[string, unknown, RegExp]>([
    ['the number 0', 0, /"0" is a placeholder/],
    ['the number -1', -1, /"-1" is a placeholder/],
    ['NaN', Number.NaN, /NaN, not an ID/],
    ['an unsafe integer', 2 ** 60, /lost digits.*string or BigInt/],
    ['a lone surrogate', 'user\uD800', /lone surrogates/],
    ['an object', { id: 7 }, /a object; return the user's ID/],
    ['a $device: ID', '$device:abc', /names a device/],
    ['an over-long ID', 'x'.repeat(256), /1-255 characters/],
  ])('refuses %s with a reason', (_label, raw, reason) => {
    const { userId, problem } = normalizeUserId(raw);
    expect(userId).toBeUndefined();
    expect(problem).toMatch(reason);
  });

  it.each<[string, unknown]>([
    ['0', 0],
    ['a lone surrogate', 'user\uDC00'],
    ['an unsafe integer', 2 ** 60],
  ])('never drops a request’s events because the resolver returned %s', (_label, raw) => {
    const { sink, errors, run } = setup();
    run(raw);
    expect(sink.events.map((event) => event.event)).toEqual(['Viewed', 'Clicked']);
    for (const event of sink.events) {
      expect(event.properties.$user_id).toBeUndefined();
      expect(event.properties.distinct_id).toBe(`$device:${event.properties.$device_id}`);
    }
    expect(sink.dropped.invalid ?? 0).toBe(0);
    expect(errors.map((error) => [error.code, error.message])).toContainEqual([
      'invalid_id',
      expect.stringMatching(/^idstitch: resolveUserId: .*tracked as before/),
    ]);
  });

  it('keeps a signed-in device as it is when the resolver returns something unusable (no rotation)', () => {
    const { sink, run } = setup();
    const linked = run('u1');
    const device = sink.events[0]!.properties.$device_id;
    sink.clear();
    const after = run(0, linked);
    expect(after).toBeUndefined();
    expect(sink.events.map((event) => event.properties.$device_id)).toEqual([device, device]);
  });
});
