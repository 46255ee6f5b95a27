/**
 * Identity is the engine's: no property object (a request body, a hook's result, super properties) can set or
 * fill a field that decides who a message is about.
 */
import { describe, expect, it } from 'vitest';
import type { IdstitchError } from '../errors.js';
import { IdstitchOptionsError } from '../errors.js';
import { createIdstitch } from '../idstitch.js';
import { IDENTITY_FIELDS } from '../messages/sanitize.js';
import type { IdstitchOptions } from '../options.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';

interface TestRequest {
  userId?: string;
}

const VICTIM = 'victim@example.com';
const FORGED: Record<string, string> = {
  distinct_id: VICTIM,
  $distinct_id: VICTIM,
  $device_id: 'attacker-device-0001',
  $user_id: VICTIM,
  $anon_id: 'attacker-device-0001',
  $identified_id: VICTIM,
  token: 'someone-elses-token',
  $token: 'someone-elses-token',
  ip: '198.51.100.66',
  $ip: '198.51.100.66',
  $insert_id: 'chosen-by-the-body',
};

function setup(options: IdstitchOptions<TestRequest> = {}) {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const engine = createIdstitch<TestRequest>(
    {
      sink,
      onError: (error) => errors.push(error),
      cookie: { secret: 'identity-fields-secret-0123' },
      ...options,
    },
    { resolveUserId: (request) => request.userId },
  );
  const start = (request: TestRequest = {}) => engine.handle(fakeRequestPort({ request, ip: '203.0.113.9' }));
  return { sink, errors, engine, start };
}

/** Every identity field an object carries that the attacker chose. */
function forgedIn(object: object | undefined): string[] {
  if (object === undefined) return [];
  return Object.entries(object)
    .filter(([key, value]) => key in FORGED && value === FORGED[key])
    .map(([key]) => key);
}

describe('identity fields in property objects', () => {
  it('lists every field the issue names', () => {
    for (const key of Object.keys(FORGED)) expect(IDENTITY_FIELDS.has(key)).toBe(true);
  });

  it("an anonymous track(req.body) with $user_id never carries the victim's ID", () => {
    const { sink, start, errors } = setup();
    start().tracker.track('Searched', { $user_id: VICTIM, q: 'shoes' });
    const p = sink.events[0]!.properties;
    expect(p.$user_id).toBeUndefined();
    expect(p.distinct_id).toBe(`$device:${p.$device_id}`);
    expect(p.q).toBe('shoes');
    expect(errors.map((error) => error.code)).toContain('invalid_property');
  });

  it('drops every identity field from track() properties, anonymous and signed in', () => {
    for (const userId of [undefined, 'u1']) {
      const { sink, start } = setup();
      start({ userId }).tracker.track('Searched', { ...FORGED });
      for (const event of sink.events) expect(forgedIn(event.properties)).toEqual([]);
      const p = sink.events.at(-1)!.properties;
      expect(p.ip).toBeUndefined();
      expect(p.token).toBeUndefined();
      expect(p.$anon_id).toBeUndefined();
      expect(p.$identified_id).toBeUndefined();
    }
  });

  it('sends ip only when geolocation is on, and then the request IP', () => {
    const { sink, start } = setup({ geolocate: true });
    start().tracker.track('x', { ip: '198.51.100.66' });
    expect(sink.events[0]!.properties.ip).toBe('203.0.113.9');
  });

  it('ignores register() and identify traits that carry identity fields', () => {
    const { sink, start } = setup();
    const { tracker } = start();
    tracker.register({ ...FORGED, plan: 'pro' });
    tracker.track('after register');
    tracker.identify('u1', { ...FORGED, name: 'Ann' });
    for (const message of sink.messages) expect(forgedIn(message.payload)).toEqual([]);
    expect(sink.events[0]!.properties.plan).toBe('pro');
    const set = sink.profileUpdates.find((update) => update.$set)!;
    expect(set.$distinct_id).toBe('u1');
    expect(forgedIn(set.$set)).toEqual([]);
    expect(set.$set).toEqual({ name: 'Ann' });
  });

  it('people.* cannot set or unset identity fields, held or sent', () => {
    const { sink, start } = setup();
    const request: TestRequest = {};
    const anonymous = start(request);
    anonymous.tracker.people.set({ ...FORGED, email: 'a@b.c' });
    anonymous.tracker.people.set('$user_id', VICTIM);
    request.userId = 'u1';
    anonymous.tracker.track('Signed In');
    expect(sink.profileUpdates.find((update) => update.$set)?.$set).toEqual({ email: 'a@b.c' });
    const signedIn = start({ userId: 'u1' });
    signedIn.tracker.people.setOnce({ ...FORGED, first: 1 });
    signedIn.tracker.people.unset(['$user_id', 'distinct_id', 'nickname']);
    for (const update of sink.profileUpdates) {
      expect(update.$distinct_id).toBe('u1');
      expect(forgedIn(update.$set ?? {})).toEqual([]);
      expect(forgedIn(update.$set_once ?? {})).toEqual([]);
      expect(update.$token).toBeUndefined();
      expect(update.$ip).toBeUndefined();
    }
    expect(sink.profileUpdates.find((update) => update.$unset)?.$unset).toEqual(['nickname']);
  });

  it('trackCharge() and group() traits drop identity fields', () => {
    const { sink, start } = setup();
    const { tracker } = start({ userId: 'u1' });
    tracker.trackCharge(9.5, { ...FORGED, sku: 'p1' });
    tracker.group('company', 'acme', { ...FORGED, size: 10 });
    const charge = sink.profileUpdates.find((update) => update.$append)!;
    expect(forgedIn(charge.$append!.$transactions as object)).toEqual([]);
    const group = sink.groupUpdates[0]!;
    expect(forgedIn(group.$set)).toEqual([]);
    expect(group.$set).toEqual({ size: 10 });
  });

  it("forUser('u').track('x', { $device_id }) never emits both IDs", () => {
    const { sink, engine } = setup();
    const tracker = engine.forUser('u');
    tracker.register({ $device_id: 'registered-device' });
    tracker.track('x', { $device_id: 'anything', $anon_id: 'anything' });
    const p = sink.events[0]!.properties;
    expect(p).toMatchObject({ distinct_id: 'u', $user_id: 'u' });
    expect(p.$device_id).toBeUndefined();
    expect(p.$anon_id).toBeUndefined();
  });

  it('forDevice(d) emits both IDs only when identify links that explicit device', () => {
    const { sink, engine } = setup();
    const device = '3f0c8a9e-8f3b-4b55-9a53-7a3c3c6d2b10';
    const tracker = engine.forDevice(device);
    tracker.track('Opened', { $user_id: VICTIM });
    expect(sink.events[0]!.properties.$user_id).toBeUndefined();
    tracker.identify('u7');
    expect(sink.events[1]!.properties).toMatchObject({ $device_id: device, $user_id: 'u7' });
  });

  it('refuses super properties that name an identity field at start-up', () => {
    expect(() => setup({ superProperties: { $user_id: 'everyone' } })).toThrow(IdstitchOptionsError);
    expect(() => setup({ superProperties: { token: 'x' } })).toThrow(/superProperties\.token/);
  });
});

describe('the caller’s own insert ID', () => {
  it('is taken from options.insertId, never from the properties', () => {
    const { sink, start } = setup();
    const { tracker } = start();
    tracker.track('Ordered', { $insert_id: 'from-the-body' }, { insertId: 'order-1234' });
    tracker.track('Ordered', { $insert_id: 'from-the-body' });
    expect(sink.events[0]!.properties.$insert_id).toBe('order-1234');
    expect(sink.events[1]!.properties.$insert_id).not.toBe('from-the-body');
  });

  it('is replaced by a fresh one, with a report, when Mixpanel would refuse it', () => {
    const { sink, start, errors } = setup();
    start().tracker.track('Ordered', {}, { insertId: 'has spaces and is far too long for mixpanel' });
    expect(sink.events[0]!.properties.$insert_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(errors.map((error) => error.message).join()).toMatch(/insertId/);
  });
});
