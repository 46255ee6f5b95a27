import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newDeviceId } from '../identity/ids.js';
import { DeviceCookieCodec } from './device-cookie.js';
import { hmac } from './signing.js';

const SECRET = 'current-secret-0123456789';
const RETIRED = 'retired-secret-0123456789';

describe('DeviceCookieCodec', () => {
  const codec = new DeviceCookieCodec([SECRET]);
  const deviceId = newDeviceId();
  const tag = codec.tagUser('user-42', deviceId);

  it('round-trips a signed anonymous and a signed linked state', () => {
    for (const state of [
      { deviceId, userTag: undefined },
      { deviceId, userTag: tag },
    ]) {
      expect(codec.decode(codec.encode(state))).toEqual({ ok: true, state, stale: false });
    }
  });

  it('never puts the user ID in the cookie', () => {
    const value = codec.encode({ deviceId, userTag: codec.tagUser('alice@example.com', deviceId) });
    expect(value).not.toContain('alice');
    expect(value).toMatch(/^1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
  });

  it('never keys the user tag by the device ID, so an unsigned cookie does not give a user ID away', () => {
    // Before: without a secret the tag was HMAC(deviceId, …), and a numeric user ID fell to brute force.
    const unsigned = new DeviceCookieCodec([]);
    const userTag = unsigned.tagUser('4217', deviceId);
    const found = Array.from({ length: 10_000 }, (_, id) => String(id)).find(
      (guess) => hmac(deviceId, `user\0${deviceId}\0${guess}`).slice(0, 16) === userTag,
    );
    expect(found).toBeUndefined();
    expect(unsigned.isTagOf(userTag, '4217', deviceId)).toBe(true);
  });

  it('rejects an unsigned value when a secret is configured', () => {
    const unsigned = new DeviceCookieCodec([]).encode({ deviceId, userTag: undefined });
    expect(codec.decode(unsigned)).toEqual({ ok: false, reason: 'unsigned' });
  });

  it('accepts a value signed with a retired secret and asks for re-signing', () => {
    const old = new DeviceCookieCodec([RETIRED]).encode({ deviceId, userTag: undefined });
    const rotated = new DeviceCookieCodec([SECRET, RETIRED]);
    expect(rotated.decode(old)).toEqual({ ok: true, state: { deviceId, userTag: undefined }, stale: true });
    expect(rotated.decode(rotated.encode({ deviceId, userTag: undefined }))).toMatchObject({ stale: false });
  });

  it('recognises a user tag made under a retired secret', () => {
    const oldTag = new DeviceCookieCodec([RETIRED]).tagUser('user-42', deviceId);
    expect(new DeviceCookieCodec([SECRET, RETIRED]).isTagOf(oldTag, 'user-42', deviceId)).toBe(true);
    expect(new DeviceCookieCodec([SECRET]).isTagOf(oldTag, 'user-42', deviceId)).toBe(false);
  });

  it('tells users apart by tag', () => {
    expect(codec.isTagOf(tag, 'user-42', deviceId)).toBe(true);
    expect(codec.isTagOf(tag, 'user-43', deviceId)).toBe(false);
  });

  it.each(['', 'garbage', `1.not-a-uuid..`, `2.${deviceId}..`, `1.${deviceId}.short.`, 'x'.repeat(5000)])(
    'rejects malformed value %#',
    (value) => {
      expect(codec.decode(value)).toEqual({ ok: false, reason: 'malformed' });
    },
  );

  it('rejects every one of 10 000 mutated signed values', () => {
    const genuine = codec.encode({ deviceId, userTag: tag });
    const alphabet = 'abcdefABCDEF0123456789-_.';
    const mutation = fc.oneof(
      // flip one character
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(genuine.length - 1),
        char: fc.constantFrom(...alphabet),
      }),
      // truncate
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(genuine.length - 1) }),
      // append
      fc.record({ kind: fc.constant('append' as const), text: fc.string({ minLength: 1, maxLength: 8 }) }),
      // re-sign with another key
      fc.record({
        kind: fc.constant('other-key' as const),
        key: fc.string({ minLength: 16, maxLength: 40 }),
      }),
      // swap the payload for another device, keeping the signature
      fc.record({ kind: fc.constant('splice' as const), uuid: fc.uuid({ version: 4 }) }),
    );
    fc.assert(
      fc.property(mutation, (m) => {
        let value: string;
        switch (m.kind) {
          case 'flip':
            value = genuine.slice(0, m.at) + m.char + genuine.slice(m.at + 1);
            break;
          case 'truncate':
            value = genuine.slice(0, m.at);
            break;
          case 'append':
            value = genuine + m.text;
            break;
          case 'other-key':
            fc.pre(m.key !== SECRET);
            value = new DeviceCookieCodec([m.key]).encode({ deviceId, userTag: tag });
            break;
          case 'splice':
            fc.pre(m.uuid !== deviceId);
            value = genuine.replace(deviceId, m.uuid);
            break;
        }
        fc.pre(value !== genuine);
        expect(codec.decode(value).ok).toBe(false);
      }),
      { numRuns: 10_000 },
    );
  });
});
