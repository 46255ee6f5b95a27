/**
 * User and group profile updates reach `/engage` and `/groups` in Mixpanel's documented shapes, for
 * every operation, with `$ip` as a top-level modifier and `ip=0` so Mixpanel never geolocates from
 * this server's address.
 */
import type { GroupUpdate, IdstitchError, ProfileUpdate } from '@idstitch/core';
import { MixpanelSink } from '@idstitch/core';
import { type FakeMixpanel, type RecordedRequest, startFakeMixpanel } from '@idstitch/fake-mixpanel';
import { groupMessage, profileMessage } from '@idstitch/fake-mixpanel/helpers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectConserved } from './support.js';

const TOKEN = 'profiles-token';
let fake: FakeMixpanel;
beforeAll(async () => {
  fake = await startFakeMixpanel({ token: TOKEN });
});
afterEach(() => fake.clear());
afterAll(() => fake.close());

function createSink() {
  const errors: IdstitchError[] = [];
  const sink = new MixpanelSink({
    token: TOKEN,
    host: fake.url,
    flushIntervalMs: 60_000,
    onError: (error) => errors.push(error),
  });
  return { sink, errors };
}

function body(request: RecordedRequest | undefined): unknown[] {
  return JSON.parse((request as RecordedRequest).body.toString('utf8'));
}

const PROFILE_OPERATIONS: [string, Omit<ProfileUpdate, '$distinct_id'>][] = [
  ['$set', { $set: { $name: 'Ada Lovelace', plan: 'pro' } }],
  ['$set_once', { $set_once: { first_seen: '2026-01-01', plan: 'ignored' } }],
  ['$add', { $add: { logins: 3 } }],
  ['$append', { $append: { visited: '/pricing' } }],
  ['$union', { $union: { visited: ['/pricing', '/docs'] } }],
  ['$remove', { $remove: { visited: '/pricing' } }],
  ['$unset', { $unset: ['plan'] }],
];

describe('/engage', () => {
  it('sends every operation as one update of the documented shape, in order, and Mixpanel applies them', async () => {
    const { sink, errors } = createSink();
    const updates = PROFILE_OPERATIONS.map(([, op]) => ({ $distinct_id: 'user-ada', ...op }));
    for (const update of updates) sink.write(profileMessage(update));
    await sink.flush();

    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request?.path).toBe('/engage');
    expect(request?.query).toEqual({ verbose: '1', ip: '0' });
    expect(request?.gzip).toBe(false);
    expect(request?.headers.authorization).toBeUndefined();
    expect(body(request)).toEqual(updates.map((update) => ({ ...update, $token: TOKEN })));
    expect(fake.profileState('user-ada')).toEqual({
      $name: 'Ada Lovelace',
      first_seen: '2026-01-01',
      logins: 3,
      visited: ['/docs'],
    });
    expect(errors).toEqual([]);
    expectConserved(sink);
  });

  it('sends $delete with $ignore_alias, and Mixpanel deletes the profile', async () => {
    const { sink } = createSink();
    sink.write(profileMessage({ $distinct_id: 'user-gone', $set: { a: 1 } }));
    sink.write(profileMessage({ $distinct_id: 'user-gone', $delete: '', $ignore_alias: true }));
    await sink.flush();
    expect(body(fake.requests[0])[1]).toEqual({
      $distinct_id: 'user-gone',
      $delete: '',
      $ignore_alias: true,
      $token: TOKEN,
    });
    expect(fake.profileState('user-gone')).toBeUndefined();
  });

  it('puts $ip at the top level when the app opted in, and sends none otherwise', async () => {
    const { sink } = createSink();
    sink.write(
      profileMessage({
        $distinct_id: 'geo',
        $set: { city_hint: 'x' },
        $ip: '203.0.113.9',
        $time: 1_767_000_000_000,
      }),
    );
    sink.write(profileMessage({ $distinct_id: 'no-geo', $set: { a: 1 }, $ignore_time: true }));
    await sink.flush();
    const [withIp, withoutIp] = body(fake.requests[0]) as Record<string, unknown>[];
    expect(withIp).toEqual({
      $distinct_id: 'geo',
      $set: { city_hint: 'x' },
      $ip: '203.0.113.9',
      $time: 1_767_000_000_000,
      $token: TOKEN,
    });
    expect(withIp?.$set).not.toHaveProperty('$ip');
    expect(withoutIp).not.toHaveProperty('$ip');
    // ip=0 on the request: without $ip nothing is geolocated, never from this server's address.
    expect(fake.profiles.map((p) => p.ipParam)).toEqual(['0', '0']);
  });

  it('never batches more than 2000 updates in one request', async () => {
    const { sink } = createSink();
    for (let i = 0; i < 4500; i += 1) sink.write(profileMessage({ $distinct_id: `u${i}`, $add: { n: 1 } }));
    await sink.flush();
    expect(fake.requests.map((r) => body(r).length)).toEqual([2000, 2000, 500]);
    expect(fake.profiles).toHaveLength(4500);
    expectConserved(sink);
  });
});

const GROUP_OPERATIONS: [string, Omit<GroupUpdate, '$group_key' | '$group_id'>][] = [
  ['$set', { $set: { name: 'Acme', seats: 10 } }],
  ['$set_once', { $set_once: { founded: 1999, name: 'ignored' } }],
  ['$union', { $union: { plans: ['pro', 'team'] } }],
  ['$remove', { $remove: { plans: 'pro' } }],
  ['$unset', { $unset: ['seats'] }],
];

describe('/groups', () => {
  it('sends every group operation in the documented shape, and Mixpanel applies them', async () => {
    const { sink, errors } = createSink();
    const updates = GROUP_OPERATIONS.map(([, op]) => ({ $group_key: 'company', $group_id: 'acme', ...op }));
    for (const update of updates) sink.write(groupMessage(update));
    await sink.flush();

    const [request] = fake.requests;
    expect(request?.path).toBe('/groups');
    expect(request?.query).toEqual({ verbose: '1' });
    expect(request?.gzip).toBe(false);
    expect(body(request)).toEqual(updates.map((update) => ({ ...update, $token: TOKEN })));
    expect(fake.groupState('company', 'acme')).toEqual({ name: 'Acme', founded: 1999, plans: ['team'] });
    expect(errors).toEqual([]);
  });

  it('sends $delete and Mixpanel deletes the group', async () => {
    const { sink } = createSink();
    sink.write(groupMessage({ $group_key: 'company', $group_id: 'gone', $set: { a: 1 } }));
    sink.write(groupMessage({ $group_key: 'company', $group_id: 'gone', $delete: '' }));
    await sink.flush();
    expect(fake.groupState('company', 'gone')).toBeUndefined();
  });

  it('refuses $add and $append on groups at write time, which Mixpanel does not document there', async () => {
    const { sink, errors } = createSink();
    sink.write(groupMessage({ $group_key: 'company', $group_id: 'acme', $add: { seats: 1 } } as never));
    sink.write(groupMessage({ $group_key: 'company', $group_id: 'acme', $append: { tags: 'x' } } as never));
    await sink.flush();
    expect(fake.requests).toHaveLength(0);
    expect(errors.map((e) => [e.code, e.details.field])).toEqual([
      ['invalid_message', 'operation'],
      ['invalid_message', 'operation'],
    ]);
    expect(sink.stats().dropped.invalid).toBe(2);
    expectConserved(sink);
  });
});
