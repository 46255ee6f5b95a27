import { describe, expect, it } from 'vitest';
import { DeviceCookieCodec } from './cookie/device-cookie.js';
import { IdstitchOptionsError } from './errors.js';
import type { IdstitchOptions } from './options.js';
import { resolveOptions } from './options.js';
import { MemorySink } from './sinks/memory-sink.js';

const defaults = { resolveUserId: () => undefined };
const engineSinks: { idMerge: string; sink: MemorySink }[] = [];
const engine = {
  sink: (idMerge: string) => {
    const sink = new MemorySink();
    engineSinks.push({ idMerge, sink });
    return sink;
  },
};
const resolve = (options: IdstitchOptions<unknown>) => resolveOptions(options, defaults, engine);

describe('resolveOptions', () => {
  it('applies documented defaults', () => {
    const resolved = resolve({ sink: new MemorySink() });
    // In development, without a secret, a random per-process key signs the cookie and keys the user tag.
    expect(resolved.cookie.secrets).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{43}$/)]);
    expect(resolved.cookie.tagKeys).toEqual(resolved.cookie.secrets);
    expect(resolve({ sink: new MemorySink() }).cookie.secrets).toEqual(resolved.cookie.secrets);
    expect(resolved).toMatchObject({
      idMerge: 'simplified',
      resetOnLogout: true,
      identifyEventName: 'Identified',
      geolocate: false,
      anonymousProfileUpdates: 'hold',
      cookie: {
        name: 'idstitch_device',
        hostName: '__Host-idstitch_device',
        insecureUnsigned: false,
        secure: 'auto',
        httpOnly: true,
        sameSite: 'lax',
        maxAge: 31_536_000,
        path: '/',
      },
      consent: { globalPrivacyControl: true, optOutCookie: 'idstitch_optout' },
      requestProperties: { path: true, referrer: true, userAgent: true },
    });
  });

  it('defaults resetOnLogout to false in original mode', () => {
    expect(resolve({ idMerge: 'original' }).resetOnLogout).toBe(false);
    expect(resolve({ idMerge: 'original', resetOnLogout: true }).resetOnLogout).toBe(true);
  });

  it.each<[string, IdstitchOptions<unknown>, string, RegExp]>([
    ['mode', { idMerge: 'merged' as never }, 'idMerge', /simplified' or 'original/],
    ['milliseconds', { cookie: { maxAge: 31_536_000_000 } }, 'cookie.maxAge', /seconds, not milliseconds/],
    [
      'short secret',
      { cookie: { secret: 'short' } },
      'cookie.secret',
      /at least 16 characters.*openssl rand/,
    ],
    ['empty rotation', { cookie: { secrets: [] } }, 'cookie.secrets', /non-empty array/],
    [
      'both secrets',
      { cookie: { secret: 'a'.repeat(16), secrets: ['b'.repeat(16)] } },
      'cookie.secrets',
      /cannot be combined/,
    ],
    [
      'bad secret in list',
      { cookie: { secrets: ['a'.repeat(16), 'x'] } },
      'cookie.secrets[1]',
      /at least 16/,
    ],
    ['cookie name', { cookie: { name: 'bad name;' } }, 'cookie.name', /valid cookie name/],
    ['domain', { cookie: { domain: 'evil.com; Path=/' } }, 'cookie.domain', /domain name/],
    ['sameSite none insecure', { cookie: { sameSite: 'none', secure: false } }, 'cookie.sameSite', /Secure/],
    [
      'reserved identify name',
      { identifyEventName: '$identify' },
      'identifyEventName',
      /ignores for merging/,
    ],
    ['sink', { sink: {} as never }, 'sink', /write, flush and close/],
    ['resolver', { resolveUserId: 'user.id' as never }, 'resolveUserId', /must be a function/],
    [
      'browser token',
      { mixpanelBrowserCookie: { token: '' } },
      'mixpanelBrowserCookie.token',
      /project token/,
    ],
    ['header', { deviceIdHeader: 'x device' }, 'deviceIdHeader', /header name/],
    ['super properties', { superProperties: { fn: () => 1 } }, 'superProperties.fn', /not serialisable/],
  ])('rejects a bad %s, naming the option and the fix', (_label, options, option, message) => {
    let thrown: unknown;
    try {
      resolve(options);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IdstitchOptionsError);
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as IdstitchOptionsError).option).toBe(option);
    expect((thrown as Error).message).toMatch(/^idstitch: option `/);
    expect((thrown as Error).message).toMatch(message);
  });

  it('refuses to start without a cookie secret in production, naming the option and the fix', () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    let thrown: unknown;
    try {
      resolve({ sink: new MemorySink() });
    } catch (error) {
      thrown = error;
    } finally {
      process.env.NODE_ENV = previous;
    }
    expect(thrown).toBeInstanceOf(IdstitchOptionsError);
    expect((thrown as IdstitchOptionsError).option).toBe('cookie.secret');
    expect((thrown as Error).message).toMatch(
      /NODE_ENV is "production".*process\.env\.IDSTITCH_COOKIE_SECRET.*insecureUnsigned/,
    );
  });

  it('warns once per process in development without a secret, and rejects forged unsigned cookies', () => {
    delete (globalThis as Record<symbol, unknown>)[Symbol.for('idstitch.warnedProcessKey')];
    const warnings: string[] = [];
    const logger = { warn: (line: string) => warnings.push(line), error: () => {} };
    const first = resolve({ sink: new MemorySink(), logger });
    resolve({ sink: new MemorySink(), logger });
    expect(warnings).toEqual([
      expect.stringMatching(/no `cookie\.secret`; signing device cookies with a random key/),
    ]);
    const forged = `1.${'6c2b6a4e-4f5e-4b8a-9c1d-2e3f4a5b6c7d'}.`;
    expect(new DeviceCookieCodec(first.cookie.secrets).decode(forged)).toEqual({
      ok: false,
      reason: 'unsigned',
    });
  });

  it('starts unsigned in production only when the app opts out explicitly, keying tags by a process key', () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const { cookie } = resolve({ sink: new MemorySink(), cookie: { insecureUnsigned: true } });
      expect(cookie.secrets).toEqual([]);
      expect(cookie.tagKeys).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{43}$/)]);
      expect(() =>
        resolve({ sink: new MemorySink(), cookie: { insecureUnsigned: true, secret: 'x'.repeat(16) } }),
      ).toThrow(/cookie\.insecureUnsigned.*cannot be combined/);
    } finally {
      process.env.NODE_ENV = previous;
    }
  });

  it.each<[IdstitchOptions<unknown>, string, RegExp]>([
    [{ cookies: { secret: 'x'.repeat(16) } } as never, 'cookies', /did you mean `cookie`\?/i],
    [{ geolocation: true } as never, 'geolocation', /did you mean `geolocate`\?/i],
    [{ cookie: { secrets: ['x'.repeat(16)], maxage: 10 } } as never, 'cookie.maxage', /`cookie\.maxAge`/],
    [{ cookie: { sameSite: 'lax', samesite: 'lax' } } as never, 'cookie.samesite', /`cookie\.sameSite`/],
    [{ consent: { optOutCookies: 'x' } } as never, 'consent.optOutCookies', /`consent\.optOutCookie`/],
    [
      { requestProperties: { referer: false } } as never,
      'requestProperties.referer',
      /`requestProperties\.referrer`/,
    ],
    [
      { mixpanelBrowserCookie: { token: 'abc', writes: true } } as never,
      'mixpanelBrowserCookie.writes',
      /`mixpanelBrowserCookie\.write`/,
    ],
    [{ zzzzzzzz: 1 } as never, 'zzzzzzzz', /not an idstitch option.*`sink`/],
  ])('refuses an unknown option key %#, suggesting the one meant', (options, option, message) => {
    let thrown: unknown;
    try {
      resolve(options);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IdstitchOptionsError);
    expect((thrown as IdstitchOptionsError).option).toBe(option);
    expect((thrown as Error).message).toMatch(message);
  });

  it('uses no __Host- name when the cookie has a domain, is never Secure, or the app turned it off', () => {
    expect(resolve({ cookie: { domain: '.shop.test' } }).cookie.hostName).toBeUndefined();
    expect(resolve({ cookie: { secure: false } }).cookie.hostName).toBeUndefined();
    expect(resolve({ cookie: { hostPrefix: false } }).cookie.hostName).toBeUndefined();
    expect(resolve({ cookie: { name: '__Host-mine' } }).cookie.hostName).toBeUndefined();
    expect(() => resolve({ cookie: { name: '__Host-mine', domain: '.shop.test' } })).toThrow(
      /cookie\.domain/,
    );
  });

  it("takes the engine's default sink in the ID Merge mode when none is given, and warns about it in production", () => {
    const warnings: string[] = [];
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    engineSinks.length = 0;
    try {
      const resolved = resolve({
        idMerge: 'original',
        cookie: { secret: 'x'.repeat(16) },
        logger: { warn: (line) => warnings.push(line), error: () => {} },
      });
      expect(engineSinks.map(({ idMerge }) => idMerge)).toEqual(['original']);
      expect(resolved.sink).toBe(engineSinks[0]!.sink);
    } finally {
      process.env.NODE_ENV = previous;
    }
    expect(warnings).toEqual([expect.stringMatching(/no sink configured/)]);
  });

  it('does not make a default sink when one is given', () => {
    engineSinks.length = 0;
    const sink = new MemorySink();
    expect(resolve({ sink }).sink).toBe(sink);
    expect(engineSinks).toEqual([]);
  });

  it('logs a throwing onError hook instead of throwing it', () => {
    const errors: string[] = [];
    const resolved = resolve({
      onError: () => {
        throw new Error('hook bug');
      },
      logger: { warn: () => {}, error: (line) => errors.push(line) },
    });
    expect(() => resolved.report(new (class extends Error {})() as never)).not.toThrow();
    expect(errors[0]).toMatch(/onError hook threw \(hook bug\)/);
  });
});
