import { describe, expect, it } from 'vitest';
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
    expect(resolved).toMatchObject({
      idMerge: 'simplified',
      resetOnLogout: true,
      identifyEventName: 'Identified',
      geolocate: false,
      anonymousProfileUpdates: 'hold',
      cookie: {
        name: 'idstitch_device',
        secrets: [],
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

  it('warns once at start-up when there is no cookie secret in production', () => {
    const warnings: string[] = [];
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      resolve({ sink: new MemorySink(), logger: { warn: (line) => warnings.push(line), error: () => {} } });
    } finally {
      process.env.NODE_ENV = previous;
    }
    expect(warnings).toEqual([expect.stringMatching(/no cookie secret/)]);
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
