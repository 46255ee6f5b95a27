/**
 * Device fixation: a genuine cookie is not necessarily this browser's. A stranger's cookie, planted for a parent
 * domain or a longer path, must never become the visitor's device, be linked to them at login, or carry its
 * held anonymous profile updates onto their profile.
 */
import { describe, expect, it } from 'vitest';
import { createIdstitch } from '../create.js';
import type { IdstitchError } from '../errors.js';
import type { IdstitchOptions } from '../options.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';
import { chooseDevice } from './choose-device.js';

interface TestRequest {
  userId?: string;
}

const NAME = 'idstitch_device';

function setup(options: IdstitchOptions<TestRequest> = {}) {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const engine = createIdstitch<TestRequest>(
    {
      sink,
      onError: (error) => errors.push(error),
      cookie: { secret: 'fixation-test-secret-0123' },
      ...options,
    },
    { resolveUserId: (request) => request.userId },
  );
  /** One request; returns the cookies it set. */
  const visit = (
    init: { userId?: string; cookie?: string; secure?: boolean; headers?: Record<string, string> },
    handler: (tracker: ReturnType<typeof engine.handle>['tracker']) => void = (tracker) =>
      tracker.track('Viewed'),
  ) => {
    const scope = engine.handle(
      fakeRequestPort({
        request: { userId: init.userId },
        cookies: init.cookie ?? '',
        secure: init.secure,
        headers: init.headers,
      }),
    );
    handler(scope.tracker);
    return scope.settle();
  };
  const deviceOf = (cookie: string) => cookie.split('.')[1]!;
  return { sink, errors, visit, deviceOf };
}

describe('two genuine device cookies', () => {
  it('a stranger’s planted cookie is never linked to the victim, and its held people.set never applied', () => {
    const { sink, visit, deviceOf } = setup();
    // The attacker gets a genuine cookie and holds an anonymous update under it.
    const attacker = visit({}, (tracker) => tracker.people.set({ email: 'attacker@evil.test' }))[0]!.value;
    const victim = visit({})[0]!.value;
    sink.clear();
    // The attacker's cookie, planted for the parent domain, is sent first; the victim signs in.
    const cookie = `${NAME}=${attacker}; ${NAME}=${victim}`;
    const writes = visit({ cookie, userId: 'victim@example.com' });
    const identified = sink.eventsNamed('Identified');
    expect(identified).toHaveLength(1);
    expect(identified[0]!.properties.$device_id).not.toBe(deviceOf(attacker));
    expect(sink.profileUpdates.filter((update) => update.$set?.email)).toEqual([]);
    // The fresh, linked device is written, and chosen on the next request.
    const linked = writes.find((write) => write.name === NAME)!.value;
    sink.clear();
    visit({ cookie: `${NAME}=${attacker}; ${NAME}=${linked}`, userId: 'victim@example.com' });
    expect(sink.events.map((event) => [event.event, event.properties.$device_id])).toEqual([
      ['Viewed', deviceOf(linked)],
    ]);
  });

  it('prefers the cookie whose user tag names the signed-in user, in either order', () => {
    const { sink, visit, deviceOf } = setup();
    const attacker = visit({})[0]!.value;
    const linked = visit({ userId: 'u1' })[0]!.value;
    for (const cookie of [
      `${NAME}=${attacker}; ${NAME}=${linked}`,
      `${NAME}=${linked}; ${NAME}=${attacker}`,
    ]) {
      sink.clear();
      visit({ cookie, userId: 'u1' });
      expect(sink.events.map((event) => [event.event, event.properties.$device_id])).toEqual([
        ['Viewed', deviceOf(linked)],
      ]);
    }
  });

  it('issues a fresh device to an anonymous visitor rather than guess which cookie is theirs', () => {
    const { sink, visit, deviceOf, errors } = setup();
    const a = visit({})[0]!.value;
    const b = visit({})[0]!.value;
    sink.clear();
    visit({ cookie: `${NAME}=${a}; ${NAME}=${b}` });
    const device = sink.events[0]!.properties.$device_id;
    expect([deviceOf(a), deviceOf(b)]).not.toContain(device);
    expect(errors.map((error) => error.message).join('\n')).toMatch(/a fresh device was issued/);
  });

  it('chooseDevice: one device → it; several → the tagged one, else none', () => {
    const isTagOf = (tag: string, userId: string) => tag === `tag-${userId}`;
    const a = { deviceId: 'a', userTag: undefined };
    const b = { deviceId: 'b', userTag: 'tag-u1' };
    expect(chooseDevice([a], undefined, isTagOf)).toEqual({ state: a, ambiguous: false });
    expect(chooseDevice([a, b], 'u1', isTagOf)).toEqual({ state: b, ambiguous: false });
    expect(chooseDevice([a, b], 'u2', isTagOf)).toEqual({ state: undefined, ambiguous: true });
    expect(chooseDevice([a, b], undefined, isTagOf)).toEqual({ state: undefined, ambiguous: true });
  });
});

describe('unauthenticated device sources', () => {
  it('a deviceIdHeader device is linked at login but never carries its held updates onto the user', () => {
    const { sink, visit, errors } = setup({ deviceIdHeader: 'x-device-id' });
    const headers = { 'x-device-id': 'app-device-00000001' };
    visit({ headers }, (tracker) => tracker.people.set({ email: 'someone@else.test' }));
    visit({ headers, userId: 'u1' });
    expect(sink.eventsNamed('Identified')[0]!.properties).toMatchObject({
      $device_id: 'app-device-00000001',
      $user_id: 'u1',
    });
    expect(sink.profileUpdates).toEqual([]);
    expect(errors.map((error) => error.message).join('\n')).toMatch(/unauthenticated source/);
  });

  it('a mixpanel-browser cookie device never carries its held updates onto the user either', () => {
    const { sink, visit, errors } = setup({ mixpanelBrowserCookie: { token: 'tok123' } });
    const device = '7d9a2b1c-3e4f-4a5b-8c6d-0e1f2a3b4c5d';
    const cookie = `mp_tok123_mixpanel=${encodeURIComponent(
      JSON.stringify({ distinct_id: `$device:${device}`, $device_id: device }),
    )}`;
    visit({ cookie }, (tracker) => tracker.people.set({ email: 'someone@else.test' }));
    visit({ cookie, userId: 'u1' });
    expect(sink.eventsNamed('Identified')[0]!.properties.$device_id).toBe(device);
    expect(sink.profileUpdates.filter((update) => update.$set?.email)).toEqual([]);
    expect(errors.map((error) => error.message).join('\n')).toMatch(/unauthenticated source/);
  });
});

describe('the __Host- cookie name', () => {
  it('is written on a secure request without a domain option', () => {
    const { visit } = setup();
    const [write, ...others] = visit({ secure: true });
    expect(others).toEqual([]);
    expect(write).toMatchObject({ name: `__Host-${NAME}`, attributes: { secure: true, path: '/' } });
    expect(write!.attributes.domain).toBeUndefined();
  });

  it('adopts a visitor’s existing plain-name cookie, moves it to the __Host- name and expires the old one', () => {
    const { sink, visit, deviceOf } = setup();
    const old = visit({})[0]!.value;
    sink.clear();
    const writes = visit({ secure: true, cookie: `${NAME}=${old}` });
    expect(sink.events[0]!.properties.$device_id).toBe(deviceOf(old));
    expect(writes.map((write) => [write.name, write.attributes.maxAge === 0])).toEqual([
      [NAME, true],
      [`__Host-${NAME}`, false],
    ]);
    expect(deviceOf(writes[1]!.value)).toBe(deviceOf(old));
  });

  it('ignores a plain-name cookie once the __Host- one exists: a planted one cannot compete', () => {
    const { sink, visit, deviceOf } = setup();
    const own = visit({ secure: true })[0]!.value;
    const planted = visit({})[0]!.value;
    sink.clear();
    const writes = visit({ secure: true, cookie: `${NAME}=${planted}; __Host-${NAME}=${own}` });
    expect(sink.events[0]!.properties.$device_id).toBe(deviceOf(own));
    expect(writes).toEqual([]);
  });

  it('is not used with a domain option or on plain HTTP', () => {
    expect(
      setup({ cookie: { secret: 'fixation-test-secret-0123', domain: '.shop.test' } }).visit({
        secure: true,
      })[0]!.name,
    ).toBe(NAME);
    expect(setup().visit({ secure: false })[0]!.name).toBe(NAME);
  });
});
