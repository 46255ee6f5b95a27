import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createIdstitch } from '../create.js';
import { IdstitchOptionsError } from '../errors.js';
import { newDeviceId } from '../identity/ids.js';
import { resolveOptions } from '../options.js';
import { MemorySink } from '../sinks/memory-sink.js';
import { fakeRequestPort } from '../testing/index.js';
import { cookieValues } from './cookie-header.js';
import { DEFAULT_VERIFIED_CACHE } from './cookie-options.js';
import { DeviceCookieCodec } from './device-cookie.js';
import { entryBytes, VerifiedCache } from './verified-cache.js';

const SECRET = 'current-secret-0123456789';
const RETIRED = 'retired-secret-0123456789';
const BOUNDS = { maxEntries: 64, maxBytes: 1024 * 1024 };

/** The same value with its signature's last character changed: same payload, same length, a different MAC. */
function tamper(value: string): string {
  return value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
}

describe('VerifiedCache', () => {
  it('holds at most maxEntries entries', () => {
    const cache = new VerifiedCache<number>({ maxEntries: 3, maxBytes: 1_000_000 });
    for (let i = 0; i < 10; i++) cache.set(`key-${i}`, i, 10);
    expect(cache.size).toBe(3);
    expect(cache.get('key-9')).toBe(9);
    expect(cache.get('key-0')).toBeUndefined();
  });

  it('holds at most maxBytes bytes, and never an entry larger than the budget', () => {
    const cache = new VerifiedCache<number>({ maxEntries: 1000, maxBytes: 100 });
    for (let i = 0; i < 10; i++) cache.set(`key-${i}`, i, 30);
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBe(90);
    cache.set('huge', 1, 101);
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.bytes).toBeLessThanOrEqual(100);
  });

  it('gives an entry used since the hand last passed a second chance (clock eviction)', () => {
    const cache = new VerifiedCache<string>({ maxEntries: 3, maxBytes: 1_000_000 });
    cache.set('a', 'a', 1);
    cache.set('b', 'b', 1);
    cache.set('c', 'c', 1);
    expect(cache.get('a')).toBe('a');
    cache.set('d', 'd', 1);
    // b was the oldest unused entry; a was used, so it moved to the back with its mark cleared.
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual(['a', 'c', 'd']);
    // Every entry is marked now (in order c, a, d): a full sweep clears them all and evicts the oldest, c.
    cache.set('e', 'e', 1);
    expect(cache.size).toBe(3);
    expect(cache.get('c')).toBeUndefined();
    expect([cache.get('a'), cache.get('d'), cache.get('e')]).toEqual(['a', 'd', 'e']);
  });

  it('accounts for a replaced key once', () => {
    const cache = new VerifiedCache<number>({ maxEntries: 10, maxBytes: 1000 });
    cache.set('k', 1, 100);
    cache.set('k', 2, 50);
    expect([cache.size, cache.bytes, cache.get('k')]).toEqual([1, 50, 2]);
  });
});

describe('DeviceCookieCodec with a verified cache', () => {
  const deviceId = newDeviceId();

  it('answers a value that verified before from the cache, with the same state', () => {
    const codec = new DeviceCookieCodec([SECRET], [SECRET], BOUNDS);
    const value = codec.encode({ deviceId, userTag: codec.tagUser('user-42', deviceId) });
    const first = codec.decode(value);
    expect(first).toMatchObject({ ok: true, state: { deviceId }, stale: false });
    expect(codec.cachedVerifications).toBe(1);
    // The very same frozen object: no HMAC was computed for the second read.
    expect(codec.decode(value)).toBe(first);
    expect(Object.isFrozen(first) && first.ok && Object.isFrozen(first.state)).toBe(true);
  });

  it('never caches a tampered or forged value, and never accepts one after a genuine value was cached', () => {
    const codec = new DeviceCookieCodec([SECRET], [SECRET], BOUNDS);
    const genuine = codec.encode({ deviceId, userTag: undefined });
    expect(codec.decode(genuine).ok).toBe(true);
    const forgeries = [
      tamper(genuine),
      // Same payload, signature cut short or extended: a prefix or an extension of the cached key.
      genuine.slice(0, -1),
      `${genuine}A`,
      // Same payload, signed with another key.
      new DeviceCookieCodec(['attacker-secret-0123456789']).encode({ deviceId, userTag: undefined }),
    ];
    for (let round = 0; round < 2; round++) {
      for (const forged of forgeries) {
        expect(codec.decode(forged)).toMatchObject({ ok: false });
      }
    }
    expect(codec.cachedVerifications).toBe(1);
  });

  it('keeps the re-sign flag of a value signed with a retired secret', () => {
    const old = new DeviceCookieCodec([RETIRED]).encode({ deviceId, userTag: undefined });
    const rotated = new DeviceCookieCodec([SECRET, RETIRED], [SECRET, RETIRED], BOUNDS);
    const expected = { ok: true, state: { deviceId, userTag: undefined }, stale: true };
    expect(rotated.decode(old)).toEqual(expected);
    expect(rotated.decode(old)).toEqual(expected);
    expect(rotated.cachedVerifications).toBe(1);
  });

  it('starts empty for a new set of secrets: a value the old secrets verified is checked again', () => {
    const before = new DeviceCookieCodec([RETIRED], [RETIRED], BOUNDS);
    const value = before.encode({ deviceId, userTag: undefined });
    expect(before.decode(value).ok).toBe(true);
    // The retired secret is dropped: the value no longer verifies, cache or not.
    const after = new DeviceCookieCodec([SECRET], [SECRET], BOUNDS);
    expect(after.decode(value)).toEqual({ ok: false, reason: 'tampered' });
  });

  it('copies the secrets it is given, so a cache cannot outlive them', () => {
    const secrets = [SECRET];
    const codec = new DeviceCookieCodec(secrets, secrets, BOUNDS);
    const value = codec.encode({ deviceId, userTag: undefined });
    expect(codec.decode(value).ok).toBe(true);
    secrets[0] = RETIRED;
    expect(codec.decode(value).ok).toBe(true);
    expect(codec.encode({ deviceId, userTag: undefined })).toBe(value);
  });

  it('remembers a user tag only for the user and device it verified for', () => {
    const codec = new DeviceCookieCodec([SECRET], [SECRET], BOUNDS);
    const tag = codec.tagUser('user-42', deviceId);
    expect(codec.isTagOf(tag, 'user-42', deviceId)).toBe(true);
    expect(codec.cachedVerifications).toBe(1);
    expect(codec.isTagOf(tag, 'user-42', deviceId)).toBe(true);
    expect(codec.isTagOf(tag, 'user-43', deviceId)).toBe(false);
    expect(codec.isTagOf(tag, 'user-42', newDeviceId())).toBe(false);
    expect(codec.isTagOf(tamper(tag), 'user-42', deviceId)).toBe(false);
    expect(codec.cachedVerifications).toBe(1);
  });

  it('stays within its bounds however many visitors come', () => {
    const bounds = { maxEntries: 10_000, maxBytes: entryBytes(100) * 5 };
    const codec = new DeviceCookieCodec([SECRET], [SECRET], bounds);
    for (let i = 0; i < 50; i++) codec.decode(codec.encode({ deviceId: newDeviceId(), userTag: undefined }));
    expect(codec.cachedVerifications).toBeLessThanOrEqual(5);
    const few = new DeviceCookieCodec([SECRET], [SECRET], { maxEntries: 4, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 50; i++) few.decode(few.encode({ deviceId: newDeviceId(), userTag: undefined }));
    expect(few.cachedVerifications).toBe(4);
  });

  it('keeps no request’s Cookie header alive through a cached value, user tag or user ID', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const codec = new DeviceCookieCodec([SECRET], [SECRET], { maxEntries: 1000, maxBytes: 4 * 1024 * 1024 });
    const headers = 200;
    const filler = 'f'.repeat(100_000);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < headers; i++) {
      const device = newDeviceId();
      const userId = `user-${i}-`.padEnd(20, 'x');
      const value = codec.encode({ deviceId: device, userTag: codec.tagUser(userId, device) });
      // A fresh 100 KB header per request; the value and the user ID are cut out of it, as parsers do.
      const header = `big=${filler}${i}; idstitch_device=${value}; uid=${userId}`;
      const [fromHeader] = cookieValues(header, 'idstitch_device');
      const [userFromHeader] = cookieValues(header, 'uid');
      const decoded = codec.decode(fromHeader as string);
      if (!decoded.ok || decoded.state.userTag === undefined) throw new Error('expected a linked cookie');
      codec.isTagOf(decoded.state.userTag, userFromHeader as string, decoded.state.deviceId);
    }
    gc();
    expect(codec.cachedVerifications).toBe(2 * headers);
    // 200 headers of 100 KB would be 20 MB; the entries themselves are well under 1 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
  });

  it('caches nothing when disabled', () => {
    const codec = new DeviceCookieCodec([SECRET], [SECRET], false);
    const value = codec.encode({ deviceId, userTag: undefined });
    expect(codec.decode(value)).toEqual(codec.decode(value));
    expect(codec.decode(value)).not.toBe(codec.decode(value));
    expect(codec.cachedVerifications).toBe(0);
  });
});

describe('cookie.verifiedCache', () => {
  const resolve = (cookie: unknown) =>
    resolveOptions(
      { sink: new MemorySink(), cookie: { secret: SECRET, ...(cookie as object) } },
      { resolveUserId: () => undefined },
      { sink: () => new MemorySink() },
    ).cookie.verifiedCache;

  it('defaults to 4096 entries and 4 MiB, keeps a given field and disables with false', () => {
    expect(resolve({})).toEqual({ maxEntries: 4096, maxBytes: 4 * 1024 * 1024 });
    expect(resolve({})).toBe(DEFAULT_VERIFIED_CACHE);
    expect(resolve({ verifiedCache: { maxEntries: 10 } })).toEqual({
      maxEntries: 10,
      maxBytes: 4 * 1024 * 1024,
    });
    expect(resolve({ verifiedCache: { maxEntries: undefined, maxBytes: 1024 } })).toEqual({
      maxEntries: 4096,
      maxBytes: 1024,
    });
    expect(resolve({ verifiedCache: false })).toBe(false);
  });

  it.each<[unknown, string, RegExp]>([
    [true, 'cookie.verifiedCache', /object or false/],
    [{ maxEntries: 0 }, 'cookie.verifiedCache.maxEntries', /positive whole number/],
    [{ maxBytes: 1.5 }, 'cookie.verifiedCache.maxBytes', /positive whole number/],
    [{ maxentries: 10 }, 'cookie.verifiedCache.maxentries', /maxEntries/],
  ])('refuses %j at start-up, naming the option', (verifiedCache, option, message) => {
    let thrown: unknown;
    try {
      resolve({ verifiedCache });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IdstitchOptionsError);
    expect((thrown as IdstitchOptionsError).option).toBe(option);
    expect((thrown as Error).message).toMatch(message);
  });
});

describe('an engine with and without the cache', () => {
  const visit = (secrets: string[], verifiedCache: false | undefined, cookie: string | undefined) => {
    const sink = new MemorySink();
    const engine = createIdstitch<{ userId?: string }>(
      { sink, onError: () => {}, cookie: { secrets, verifiedCache } },
      { resolveUserId: (request) => request.userId },
    );
    return (request: { userId?: string }, value = cookie) => {
      const scope = engine.handle(
        fakeRequestPort({ request, cookies: value === undefined ? {} : { idstitch_device: value } }),
      );
      scope.tracker.track('Viewed');
      const identity = scope.tracker.identity;
      const written = scope.settle().find((write) => write.name === 'idstitch_device')?.value;
      return { identity, written, events: sink.events.map((event) => event.event) };
    };
  };

  it.each([undefined, false as const])(
    'gives a returning, signed-in visitor the same identity and writes with verifiedCache %s',
    (verifiedCache) => {
      const first = visit([RETIRED], verifiedCache, undefined)({ userId: 'user-42' });
      const cookie = first.written as string;
      // After a rotation: the retired secret still verifies, and the cookie is re-signed, every time.
      const rotated = visit([SECRET, RETIRED], verifiedCache, cookie);
      const old = new DeviceCookieCodec([RETIRED]).decode(cookie);
      if (!old.ok) throw new Error('the first visit wrote no valid cookie');
      const resigned = new DeviceCookieCodec([SECRET]).encode(old.state);
      for (let i = 0; i < 3; i++) {
        const again = rotated({ userId: 'user-42' });
        expect(again.identity).toEqual({ ...first.identity });
        expect(again.written).toBe(resigned);
      }
      // Once the retired secret is dropped, the old cookie is a stranger's: a fresh device.
      const dropped = visit([SECRET], verifiedCache, cookie)({ userId: 'user-42' });
      expect(dropped.identity.deviceId).not.toBe(first.identity.deviceId);
      // A different user on the same device never inherits it, cache or not.
      const other = visit([RETIRED], verifiedCache, cookie);
      other({ userId: 'user-42' });
      expect(other({ userId: 'user-43' }).identity.deviceId).not.toBe(first.identity.deviceId);
    },
  );
});
