import { describe, expect, it } from 'vitest';
import { mixpanelBrowserCookieName } from '../cookie/mixpanel-browser-cookie.js';
import type { IdstitchError } from '../errors.js';
import { MemoryIdentityStore } from '../identity/identity-store.js';
import { createIdstitch } from '../idstitch.js';
import type { IdstitchOptions } from '../options.js';
import { type FakeRequestInit, fakeRequestPort, MemorySink } from '../testing/index.js';

interface TestRequest {
  userId?: string | number | object;
}

const SECRET = 'unit-test-secret-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(options: IdstitchOptions<TestRequest> = {}) {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const engine = createIdstitch<TestRequest>(
    { sink, onError: (error) => errors.push(error), cookie: { secret: SECRET }, ...options },
    { resolveUserId: (request) => request.userId },
  );
  const start = (init: FakeRequestInit<TestRequest> = {}) => engine.handle(fakeRequestPort(init));
  /** Runs one request and returns the device cookie it set, as a browser would send it back. */
  const cookieFrom = (scope: ReturnType<typeof start>) =>
    scope.settle().find((write) => write.name === 'idstitch_device')?.value;
  return { sink, errors, engine, start, cookieFrom };
}

describe('event stamping', () => {
  it('stamps identity, time, $insert_id, library and request facts', () => {
    const { sink, start } = setup();
    const before = Date.now();
    start({
      path: '/cart?coupon=SECRET',
      headers: { Referer: 'https://shop.test/item?email=a@b.c#x', 'User-Agent': 'UA/1' },
      ip: '203.0.113.9',
    }).tracker.track('Viewed Cart', { items: 3 });
    const [event] = sink.events;
    expect(event?.event).toBe('Viewed Cart');
    const p = event!.properties;
    expect(p.$device_id).toMatch(UUID);
    expect(p.distinct_id).toBe(`$device:${p.$device_id}`);
    expect(p.$user_id).toBeUndefined();
    expect(p.$insert_id).toMatch(UUID);
    expect(p.time).toBeGreaterThanOrEqual(before);
    expect(p).toMatchObject({
      items: 3,
      mp_lib: 'idstitch',
      $pathname: '/cart',
      $referrer: 'https://shop.test/item?email=a@b.c#x',
      $referring_domain: 'shop.test',
      $user_agent: 'UA/1',
    });
    expect(p.ip).toBeUndefined();
  });

  it('gives every event its own $insert_id', () => {
    const { sink, start } = setup();
    const { tracker } = start();
    for (let i = 0; i < 100; i++) tracker.track('tick');
    expect(new Set(sink.events.map((event) => event.properties.$insert_id)).size).toBe(100);
  });

  it('sends the client IP only when geolocate is on', () => {
    const { sink, start } = setup({ geolocate: true });
    start({ ip: '203.0.113.9' }).tracker.track('x');
    expect(sink.events[0]?.properties.ip).toBe('203.0.113.9');
  });

  it('leaves out request facts the app turned off', () => {
    const { sink, start } = setup({ requestProperties: { path: false, referrer: false, userAgent: false } });
    start({ path: '/a', headers: { referer: 'https://r.test/', 'user-agent': 'UA' } }).tracker.track('x');
    const p = sink.events[0]!.properties;
    expect(p.$pathname).toBeUndefined();
    expect(p.$referrer).toBeUndefined();
    expect(p.$user_agent).toBeUndefined();
  });

  it('layers super properties: app < request facts < register < event; identity always wins', () => {
    const { sink, start } = setup({ superProperties: { plan: 'free', app: 'shop' } });
    const { tracker } = start({ path: '/p' });
    tracker.register({ plan: 'pro', $pathname: '/overridden' });
    tracker.track('x', { app: 'admin', distinct_id: 'forged', $device_id: 'forged' });
    const p = sink.events[0]!.properties;
    expect(p).toMatchObject({ plan: 'pro', app: 'admin', $pathname: '/overridden' });
    expect(p.distinct_id).toBe(`$device:${p.$device_id}`);
    expect(p.$device_id).not.toBe('forged');
  });

  it('keeps a caller-supplied time (Date or ms) and an insert ID given as an option', () => {
    const { sink, start } = setup();
    const { tracker } = start();
    tracker.track('a', { time: new Date('2026-01-02T03:04:05Z') }, { insertId: 'order-1234' });
    tracker.track('b', { time: 1_767_000_000_000 });
    expect(sink.events[0]!.properties).toMatchObject({
      time: Date.parse('2026-01-02T03:04:05Z'),
      $insert_id: 'order-1234',
    });
    expect(sink.events[1]!.properties.time).toBe(1_767_000_000_000);
  });
});

describe('identity within and across requests', () => {
  it('sees a login inside the handler at the next track call and links the device', () => {
    const { sink, start } = setup();
    const request: TestRequest = {};
    const { tracker } = start({ request });
    tracker.track('before');
    request.userId = 'u1';
    tracker.track('after');
    expect(sink.events.map((event) => [event.event, event.properties.$user_id])).toEqual([
      ['before', undefined],
      ['Identified', 'u1'],
      ['after', 'u1'],
    ]);
    expect(new Set(sink.events.map((event) => event.properties.$device_id)).size).toBe(1);
  });

  it('emits identify when the login happens without any track call, and writes the cookie once', () => {
    const { sink, start } = setup();
    const request: TestRequest = {};
    const scope = start({ request });
    request.userId = 'u1';
    expect(scope.settle()).toHaveLength(1);
    expect(scope.settle()).toEqual([]);
    expect(sink.eventsNamed('Identified')).toHaveLength(1);
  });

  it('does not rewrite an unchanged cookie', () => {
    const { start, cookieFrom } = setup();
    const cookie = cookieFrom(start({ request: { userId: 'u1' } }))!;
    expect(start({ request: { userId: 'u1' }, cookies: { idstitch_device: cookie } }).settle()).toEqual([]);
  });

  it('rotates the device on logout inside the handler', () => {
    const { sink, start, cookieFrom } = setup();
    const cookie = cookieFrom(start({ request: { userId: 'u1' } }))!;
    const request: TestRequest = { userId: 'u1' };
    const scope = start({ request, cookies: { idstitch_device: cookie } });
    scope.tracker.track('signed in');
    delete request.userId;
    scope.tracker.track('signed out');
    const [signedIn, signedOut] = sink.events.slice(-2);
    expect(signedIn!.properties.$user_id).toBe('u1');
    expect(signedOut!.properties.$user_id).toBeUndefined();
    expect(signedOut!.properties.$device_id).not.toBe(signedIn!.properties.$device_id);
    expect(cookieFrom(scope)).toContain(signedOut!.properties.$device_id);
  });

  it('keeps identity when the resolver throws, and reports it', () => {
    const { sink, errors, engine, cookieFrom } = setup();
    let fail = false;
    const resolving = createIdstitch<TestRequest>(
      { sink, cookie: { secret: SECRET }, onError: (error) => errors.push(error) },
      {
        resolveUserId: () => {
          if (fail) throw new Error('db down');
          return 'u1';
        },
      },
    );
    const cookie = cookieFrom(resolving.handle(fakeRequestPort({})))!;
    fail = true;
    const scope = resolving.handle(fakeRequestPort({ cookies: { idstitch_device: cookie } }));
    scope.tracker.track('x');
    expect(errors.map((error) => error.code)).toContain('resolver_failed');
    expect(scope.settle()).toEqual([]);
    expect(engine).toBeDefined();
  });

  it('refuses a resolver that returns the user object instead of its ID', () => {
    const { sink, errors, start } = setup();
    start({ request: { userId: { id: 7 } } }).tracker.track('x');
    expect(errors[0]?.code).toBe('invalid_id');
    expect(sink.events[0]!.properties.$user_id).toBeUndefined();
  });

  it('accepts numeric user IDs as strings', () => {
    const { sink, start } = setup();
    start({ request: { userId: 42 } }).tracker.track('x');
    expect(sink.events.at(-1)!.properties.$user_id).toBe('42');
  });

  it('reset() gives a fresh device and treats the signed-in user as anonymous for the request', () => {
    const { sink, start } = setup();
    const { tracker } = start({ request: { userId: 'u1' } });
    tracker.track('a');
    tracker.reset();
    tracker.track('b');
    const [, a, b] = sink.events;
    expect(a!.properties.$user_id).toBe('u1');
    expect(b!.properties.$user_id).toBeUndefined();
    expect(b!.properties.$device_id).not.toBe(a!.properties.$device_id);
  });

  it('exposes the current identity', () => {
    const { start } = setup();
    const identity = start({ request: { userId: 'u1' } }).tracker.identity;
    expect(identity).toMatchObject({ userId: 'u1', distinctId: 'u1' });
    expect(identity.deviceId).toMatch(UUID);
  });
});

describe('device cookie input', () => {
  it('issues a new device for a tampered cookie and reports why, without the value', () => {
    const { errors, start, cookieFrom } = setup();
    const genuine = cookieFrom(start())!;
    const tampered = genuine.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const scope = start({ cookies: { idstitch_device: tampered } });
    expect(scope.tracker.identity.deviceId).not.toBe(genuine.split('.')[1]);
    expect(errors.map((error) => error.code)).toEqual(['tampered_cookie']);
    expect(JSON.stringify(errors[0]!.details)).not.toContain(tampered);
  });

  it('uses the genuine cookie when a planted one precedes it, and rewrites ours', () => {
    const { errors, start, cookieFrom } = setup();
    const genuine = cookieFrom(start())!;
    const planted = new Array(3)
      .fill(0)
      .map(() => 'x')
      .join('');
    const scope = start({ cookies: `idstitch_device=${planted}; idstitch_device=${genuine}` });
    expect(scope.tracker.identity.deviceId).toBe(genuine.split('.')[1]);
    expect(errors.map((error) => error.code)).toEqual(['duplicate_cookie']);
    expect(cookieFrom(scope)).toBe(genuine);
  });

  it('accepts a cookie signed with a retired secret and re-signs it with the current one', () => {
    const old = setup({ cookie: { secret: 'the-retired-secret-123456' } });
    const cookie = old.cookieFrom(old.start())!;
    const rotated = setup({
      cookie: { secrets: ['the-current-secret-1234567', 'the-retired-secret-123456'] },
    });
    const scope = rotated.start({ cookies: { idstitch_device: cookie } });
    expect(scope.tracker.identity.deviceId).toBe(cookie.split('.')[1]);
    const resigned = rotated.cookieFrom(scope)!;
    expect(resigned).not.toBe(cookie);
    expect(resigned.split('.')[1]).toBe(cookie.split('.')[1]);
  });

  it('reports values the framework signature rejected: tampered when none is left, duplicate otherwise', () => {
    const { errors, engine, start, cookieFrom } = setup();
    const genuine = cookieFrom(start())!;
    const frameworkRejected = (cookies: Record<string, string>) => ({
      ...fakeRequestPort<TestRequest>({ cookies }),
      rejectedCookies: (name: string) => (name === 'idstitch_device' ? 1 : 0),
    });
    errors.length = 0;
    const none = engine.handle(frameworkRejected({}));
    expect(none.tracker.identity.deviceId).not.toBe(genuine.split('.')[1]);
    expect(errors.map((error) => [error.code, error.details.reason])).toEqual([
      ['tampered_cookie', 'framework signature'],
    ]);
    errors.length = 0;
    const kept = engine.handle(frameworkRejected({ idstitch_device: genuine }));
    expect(kept.tracker.identity.deviceId).toBe(genuine.split('.')[1]);
    expect(errors.map((error) => error.code)).toEqual(['duplicate_cookie']);
    expect(cookieFrom(kept)).toBe(genuine);
  });

  it('sets the cookie attributes from the options', () => {
    const { start } = setup({
      cookie: { secret: SECRET, domain: '.shop.test', maxAge: 3600, sameSite: 'strict' },
    });
    const [write] = start({ secure: true }).settle();
    expect(write!.attributes).toEqual({
      path: '/',
      domain: '.shop.test',
      maxAge: 3600,
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
    });
  });
});

describe('consent', () => {
  it.each([
    ['Sec-GPC: 1', { headers: { 'Sec-GPC': '1' } }],
    ['the opt-out cookie', { cookies: { idstitch_optout: '1' } }],
  ])('sends nothing and sets no cookie for %s, counting the drops', (_name, init) => {
    const { sink, start } = setup();
    const scope = start(init);
    scope.tracker.track('x');
    scope.tracker.people.set({ a: 1 });
    scope.tracker.identify('u1');
    expect(sink.messages).toEqual([]);
    expect(sink.dropped.consent).toBe(3);
    expect(scope.settle()).toEqual([]);
    expect(scope.tracker.optedOut).toBe(true);
  });

  it('deletes an existing tracking cookie when the visitor opts out', () => {
    const { start, cookieFrom } = setup();
    const cookie = cookieFrom(start())!;
    const [write] = start({ headers: { 'sec-gpc': '1' }, cookies: { idstitch_device: cookie } }).settle();
    expect(write).toMatchObject({ name: 'idstitch_device', value: '', attributes: { maxAge: 0 } });
  });

  it('treats a throwing consent hook as opted out', () => {
    const { sink, errors, start } = setup({
      consent: {
        isOptedOut: () => {
          throw new Error('cmp unavailable');
        },
      },
    });
    start().tracker.track('x');
    expect(sink.events).toEqual([]);
    expect(errors[0]?.code).toBe('hook_failed');
  });

  it('can ignore Global Privacy Control when the app decides consent itself', () => {
    const { sink, start } = setup({ consent: { globalPrivacyControl: false } });
    start({ headers: { 'sec-gpc': '1' } }).tracker.track('x');
    expect(sink.events).toHaveLength(1);
  });
});

describe('profiles', () => {
  it('holds anonymous profile updates and applies them to the user on login', () => {
    const { sink, start, cookieFrom } = setup();
    const anon = start();
    anon.tracker.people.set({ plan: 'trial' });
    anon.tracker.people.increment('visits');
    const cookie = cookieFrom(anon)!;
    expect(sink.profileUpdates).toEqual([]);
    start({ request: { userId: 'u1' }, cookies: { idstitch_device: cookie } }).tracker.track('x');
    expect(sink.profileUpdates).toEqual([
      { $distinct_id: 'u1', $set: { plan: 'trial' } },
      { $distinct_id: 'u1', $add: { visits: 1 } },
    ]);
  });

  it('bounds held updates per device and reports what it dropped', () => {
    const errors: IdstitchError[] = [];
    const store = new MemoryIdentityStore({
      maxUpdatesPerDevice: 2,
      onDrop: (_d, count, reason) => errors.push({ code: reason, count } as never),
    });
    const { sink, start } = setup({ identityStore: store });
    const request: TestRequest = {};
    const { tracker } = start({ request });
    for (let i = 0; i < 5; i++) tracker.people.set({ i });
    request.userId = 'u1';
    tracker.track('x');
    expect(sink.profileUpdates.map((update) => update.$set)).toEqual([{ i: 3 }, { i: 4 }]);
    expect(errors).toEqual([
      { code: 'per-device limit', count: 1 },
      { code: 'per-device limit', count: 1 },
      { code: 'per-device limit', count: 1 },
    ]);
  });

  it("sends anonymous updates to the device's profile when asked to", () => {
    const { sink, start } = setup({ anonymousProfileUpdates: 'send' });
    const { tracker } = start();
    tracker.people.set('plan', 'trial');
    expect(sink.profileUpdates[0]).toEqual({
      $distinct_id: `$device:${tracker.identity.deviceId}`,
      $set: { plan: 'trial' },
    });
  });

  it('shapes every profile operation as /engage expects', () => {
    const { sink, start } = setup();
    const { tracker } = start({ request: { userId: 'u1' } });
    tracker.people.set({ a: 1 });
    tracker.people.setOnce('first', 'yes');
    tracker.people.increment({ logins: 2 });
    tracker.people.append('tags', 'x');
    tracker.people.union('roles', ['admin', 'admin']);
    tracker.people.union({ teams: 'core' } as never);
    tracker.people.remove('tags', 'x');
    tracker.people.unset(['a', 'first']);
    tracker.trackCharge(9.99, { sku: 'p1' });
    tracker.people.deleteProfile();
    const updates = sink.profileUpdates.map(({ $distinct_id, ...rest }) => {
      expect($distinct_id).toBe('u1');
      return rest;
    });
    expect(updates).toEqual([
      { $set: { a: 1 } },
      { $set_once: { first: 'yes' } },
      { $add: { logins: 2 } },
      { $append: { tags: 'x' } },
      { $union: { roles: ['admin', 'admin'] } },
      { $union: { teams: ['core'] } },
      { $remove: { tags: 'x' } },
      { $unset: ['a', 'first'] },
      { $append: { $transactions: { sku: 'p1', $amount: 9.99, $time: expect.any(String) } } },
      { $delete: '', $ignore_alias: true },
    ]);
  });

  it('adds $ip to profile updates only when geolocate is on', () => {
    const { sink, start } = setup({ geolocate: true });
    start({ request: { userId: 'u1' }, ip: '198.51.100.7' }).tracker.people.set({ a: 1 });
    expect(sink.profileUpdates[0]).toEqual({ $distinct_id: 'u1', $set: { a: 1 }, $ip: '198.51.100.7' });
  });

  it('drops a non-numeric increment with a reason', () => {
    const { sink, errors, start } = setup();
    start({ request: { userId: 'u1' } }).tracker.people.increment({ logins: 'many' } as never);
    expect(sink.profileUpdates).toEqual([]);
    expect(errors.map((error) => error.code)).toContain('invalid_property');
  });
});

describe('identify and groups', () => {
  it('identify() with traits links the device, sets traits and turns the company into a group', () => {
    const { sink, start } = setup();
    const { tracker } = start();
    tracker.identify('a1cab6eb', {
      email: 'brian@airbnb.com',
      company: { id: 'b4c64565', domain: 'airbnb.com', plan: 'premium' },
    });
    tracker.track('Dashboard Viewed');
    expect(sink.events.map((event) => event.event)).toEqual(['Identified', 'Dashboard Viewed']);
    expect(sink.events[1]!.properties).toMatchObject({ $user_id: 'a1cab6eb', company: 'b4c64565' });
    expect(sink.groupUpdates).toEqual([
      { $group_key: 'company', $group_id: 'b4c64565', $set: { domain: 'airbnb.com', plan: 'premium' } },
    ]);
    expect(sink.profileUpdates).toEqual([
      { $distinct_id: 'a1cab6eb', $union: { company: ['b4c64565'] } },
      { $distinct_id: 'a1cab6eb', $set: { email: 'brian@airbnb.com' } },
    ]);
  });

  it('identify() for an already linked user emits nothing new', () => {
    const { sink, start } = setup();
    const { tracker } = start({ request: { userId: 'u1' } });
    tracker.identify('u1');
    tracker.identify('u1');
    expect(sink.eventsNamed('Identified')).toHaveLength(1);
  });

  it('uses the configured identify event name', () => {
    const { sink, start } = setup({ identifyEventName: 'Signed In' });
    start({ request: { userId: 'u1' } }).tracker.track('x');
    expect(sink.events[0]!.event).toBe('Signed In');
  });
});

describe('ID Merge modes', () => {
  it('refuses alias and merge in simplified mode, counting them as invalid', () => {
    const { sink, errors, start } = setup();
    const { tracker } = start();
    tracker.alias('new-id');
    tracker.merge('a', 'b');
    expect(sink.events).toEqual([]);
    expect(errors.map((error) => error.code)).toEqual(['unsupported_in_mode', 'unsupported_in_mode']);
    expect(sink.dropped.invalid).toBe(2);
  });

  it('emits $create_alias and $merge in original mode', () => {
    const { sink, start } = setup({ idMerge: 'original' });
    const { tracker } = start({ request: { userId: 'u1' } });
    tracker.alias('u1@legacy');
    tracker.merge('u1', 'u1-old');
    expect(sink.eventsNamed('$create_alias')[0]!.properties).toMatchObject({
      distinct_id: 'u1',
      alias: 'u1@legacy',
    });
    expect(sink.eventsNamed('$merge')[0]!.properties).toMatchObject({ $distinct_ids: ['u1', 'u1-old'] });
  });

  it('skips $identify for a device ID that is not a UUIDv4, with a reason', () => {
    const { sink, errors, start } = setup({ idMerge: 'original', deviceIdHeader: 'x-device-id' });
    start({ request: { userId: 'u1' }, headers: { 'x-device-id': 'ios-device-0001' } }).tracker.track('x');
    expect(sink.eventsNamed('$identify')).toEqual([]);
    expect(errors[0]?.code).toBe('invalid_id');
    expect(sink.events[0]!.properties).toMatchObject({ $device_id: 'ios-device-0001', distinct_id: 'u1' });
  });
});

describe('bad input never throws', () => {
  it.each([
    ['empty name', ''],
    ['non-string name', 42],
    ['reserved name', '$identify'],
    ['too long name', 'x'.repeat(256)],
  ])('drops an event with %s and reports it', (_label, name) => {
    const { sink, errors, start } = setup();
    expect(() => start().tracker.track(name as string)).not.toThrow();
    expect(sink.events).toEqual([]);
    expect(sink.dropped.invalid).toBe(1);
    expect(errors[0]?.code).toBe('invalid_event_name');
  });

  it('repairs hostile properties and reports the repairs', () => {
    const { sink, errors, start } = setup();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    start().tracker.track('x', {
      ...hostile,
      big: 10n,
      nan: Number.NaN,
      fn: () => 1,
      cyclic,
      long: 'y'.repeat(1000),
    });
    const p = sink.events[0]!.properties;
    expect(p).toMatchObject({ ok: 1, big: '10', nan: null, cyclic: { name: 'loop', self: '[Circular]' } });
    expect(p.fn).toBeUndefined();
    expect(String(p.long)).toHaveLength(255);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(errors[0]?.code).toBe('invalid_property');
  });
});

describe('work outside a request', () => {
  it('forUser() tracks as the user, without a device', () => {
    const { sink, engine } = setup();
    engine.forUser('u7').track('Invoice Paid');
    expect(sink.events[0]!.properties).toMatchObject({ distinct_id: 'u7', $user_id: 'u7' });
    expect(sink.events[0]!.properties.$device_id).toBeUndefined();
  });

  it('forDevice() tracks anonymously and identify() links the device', () => {
    const { sink, engine } = setup();
    const tracker = engine.forDevice('3f0c8a9e-8f3b-4b55-9a53-7a3c3c6d2b10');
    tracker.track('Email Opened');
    tracker.identify('u7');
    expect(sink.events.map((event) => [event.event, event.properties.distinct_id])).toEqual([
      ['Email Opened', '$device:3f0c8a9e-8f3b-4b55-9a53-7a3c3c6d2b10'],
      ['Identified', 'u7'],
    ]);
  });

  it('forUser() refuses a placeholder ID', () => {
    const { engine } = setup();
    expect(() => engine.forUser('undefined')).toThrow(/forUser\(\) needs a user ID/);
  });
});

describe('mixpanel-browser cookie', () => {
  const token = 'abc123token';
  const name = mixpanelBrowserCookieName(token);
  const browserDevice = '7d9a2b1c-3e4f-4a5b-8c6d-0e1f2a3b4c5d';

  it("joins the browser's device", () => {
    const { sink, start } = setup({ mixpanelBrowserCookie: { token } });
    start({
      cookies: {
        [name]: JSON.stringify({ distinct_id: `$device:${browserDevice}`, $device_id: browserDevice }),
      },
    }).tracker.track('x');
    expect(sink.events[0]!.properties.$device_id).toBe(browserDevice);
  });

  it('writes the browser cookie by default: seeded on a new device, cleared on reset as reset() does', () => {
    const { start } = setup({ mixpanelBrowserCookie: { token, domain: '.shop.test' } });
    const fresh = start()
      .settle()
      .find((write) => write.name === name)!;
    const seeded = JSON.parse(fresh.value);
    expect(seeded).toEqual({ distinct_id: `$device:${seeded.$device_id}`, $device_id: seeded.$device_id });
    expect(fresh.attributes).toMatchObject({ httpOnly: false, domain: '.shop.test', path: '/' });

    const existing = {
      distinct_id: 'u1',
      $device_id: browserDevice,
      $user_id: 'u1',
      utm_source: 'news',
      plan: 'pro',
      __mps: { $email: 'u1@example.com' },
    };
    const scope = start({ cookies: { [name]: JSON.stringify(existing) } });
    scope.tracker.reset();
    const rewritten = JSON.parse(scope.settle().find((write) => write.name === name)!.value);
    expect(rewritten.$device_id).not.toBe(browserDevice);
    // Super properties and queued people updates of the previous person do not survive, as with reset().
    expect(rewritten).toEqual({
      distinct_id: `$device:${rewritten.$device_id}`,
      $device_id: rewritten.$device_id,
    });
  });

  it('teaches the browser SDK a server-side login as identify() would persist it, keeping other keys', () => {
    const { start } = setup({ mixpanelBrowserCookie: { token } });
    const existing = {
      distinct_id: `$device:${browserDevice}`,
      $device_id: browserDevice,
      $initial_referrer: '$direct',
      $initial_referring_domain: '$direct',
      __mps: { plan: 'pro' },
      __alias: 'old',
    };
    const scope = start({ cookies: { [name]: JSON.stringify(existing) }, request: { userId: 'u9' } });
    scope.tracker.track('x');
    const written = JSON.parse(scope.settle().find((write) => write.name === name)!.value);
    const { __alias: _alias, ...kept } = existing;
    expect(written).toEqual({ ...kept, $device_id: browserDevice, $user_id: 'u9', distinct_id: 'u9' });
  });

  it('never links a device the browser SDK identified as someone else to the signed-in user', () => {
    const { sink, start } = setup({ mixpanelBrowserCookie: { token } });
    const other = { distinct_id: 'alice', $device_id: browserDevice, $user_id: 'alice' };
    const scope = start({ cookies: { [name]: JSON.stringify(other) }, request: { userId: 'bob' } });
    scope.tracker.track('x');
    const written = JSON.parse(scope.settle().find((write) => write.name === name)!.value);
    expect(written.$device_id).not.toBe(browserDevice);
    expect(written).toEqual({ distinct_id: 'bob', $user_id: 'bob', $device_id: written.$device_id });
    for (const event of sink.events) expect(event.properties.$device_id).not.toBe(browserDevice);
  });

  it('leaves a client-side identify alone while the server sees no user', () => {
    const { sink, start } = setup({ mixpanelBrowserCookie: { token } });
    const identified = { distinct_id: 'alice', $device_id: browserDevice, $user_id: 'alice' };
    const scope = start({ cookies: { [name]: JSON.stringify(identified) } });
    scope.tracker.track('x');
    expect(scope.settle().find((write) => write.name === name)).toBeUndefined();
    expect(sink.events[0]!.properties.$device_id).toBe(browserDevice);
  });

  it('writes no browser cookie when write is false', () => {
    const { start } = setup({ mixpanelBrowserCookie: { token, write: false } });
    expect(
      start()
        .settle()
        .find((write) => write.name === name),
    ).toBeUndefined();
  });

  it("gives the cookie the SDK's domain: the registrable domain, host-only on an IP or localhost", () => {
    const { start } = setup({ mixpanelBrowserCookie: { token } });
    const domainOf = (host: string) =>
      start({ headers: { host } })
        .settle()
        .find((write) => write.name === name)!.attributes.domain;
    expect(domainOf('app.example.com:8080')).toBe('.example.com');
    expect(domainOf('www.oxford.ac.uk')).toBe('.oxford.ac.uk');
    expect(domainOf('127.0.0.1:3000')).toBeUndefined();
    expect(domainOf('localhost')).toBeUndefined();
    const hostOnly = setup({ mixpanelBrowserCookie: { token, crossSubdomainCookie: false } });
    expect(
      hostOnly
        .start({ headers: { host: 'app.example.com' } })
        .settle()
        .find((write) => write.name === name)!.attributes.domain,
    ).toBeUndefined();
  });
});
