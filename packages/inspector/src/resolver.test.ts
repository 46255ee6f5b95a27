import type { OutgoingMessage } from '@idstitch/core';
import { describe, expect, it } from 'vitest';
import {
  expectedGuideRows,
  guideTableMessages,
  SIMPLIFIED_GUIDE_TABLES,
  toComparableRow,
} from './guide-tables.js';
import { buildReport } from './report.js';
import type { Resolution } from './resolver.js';
import { inferIdMergeMode, resolveIdentities } from './resolver.js';

const D1 = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const D2 = 'c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f';
const D3 = '1f2e3d4c-5b6a-4798-a6b5-c4d3e2f1a0b9';
const IDS = { D1, D2, U1: 'user-1001', U2: 'user-1002' };
const U1 = IDS.U1;
const U2 = IDS.U2;

let clock = 0;
function event(name: string, properties: Record<string, unknown>): OutgoingMessage {
  clock += 1;
  return {
    kind: 'event',
    payload: {
      event: name,
      properties: { time: 1_700_000_000_000 + clock, $insert_id: `ins-${clock}`, ...properties } as never,
    },
  };
}
/** An event stamped the way idstitch's tracker stamps it in Simplified mode. */
function simplified(name: string, deviceId: string, userId?: string): OutgoingMessage {
  return event(name, {
    distinct_id: userId ?? `$device:${deviceId}`,
    $device_id: deviceId,
    ...(userId === undefined ? {} : { $user_id: userId }),
  });
}
/** An ordinary event in Original mode: distinct_id is the current ID. */
function original(name: string, distinctId: string): OutgoingMessage {
  return event(name, { distinct_id: distinctId });
}
function identify(anon: string, identified: string): OutgoingMessage {
  return event('$identify', { distinct_id: identified, $anon_id: anon, $identified_id: identified });
}
function alias(aliasId: string, existing: string): OutgoingMessage {
  return event('$create_alias', { distinct_id: existing, alias: aliasId });
}
function merge(a: string, b: string): OutgoingMessage {
  return event('$merge', { distinct_id: a, $distinct_ids: [a, b] });
}
function profileSet(distinctId: string, set: Record<string, string>): OutgoingMessage {
  return { kind: 'profile', payload: { $distinct_id: distinctId, $set: set } };
}

function clusterOf(resolution: Resolution, id: string): string[] | undefined {
  return resolution.clusters
    .find((cluster) => cluster.ids.includes(id))
    ?.ids.slice()
    .sort();
}
function resolvedNames(resolution: Resolution): string[] {
  return resolution.events.map((e) => e.resolved);
}

describe('Simplified ID Merge: every table of the guide', () => {
  it.each(
    SIMPLIFIED_GUIDE_TABLES.map((table, i) => ({ ...table, name: `${table.flow} #${i + 1}: ${table.step}` })),
  )('$name', (table) => {
    const report = buildReport(guideTableMessages(table, IDS), { mode: 'simplified' });
    const rows = report.timelines
      .flatMap((timeline) => timeline.rows)
      .sort((a, b) => a.message - b.message)
      .map(toComparableRow);
    expect(rows).toEqual(expectedGuideRows(table, IDS));
  });

  it('keeps the two users of one device in separate clusters (the guide’s last note is a typo)', () => {
    const last = SIMPLIFIED_GUIDE_TABLES.at(-1)!;
    const resolution = resolveIdentities(guideTableMessages(last, IDS), { mode: 'simplified' });
    expect(resolution.clusters.map((c) => c.ids.slice().sort())).toEqual([
      [`$device:${D1}`, U1].sort(),
      [`$device:${D2}`, U2].sort(),
    ]);
  });

  it('joins every device of a returning user into one cluster with the user ID as canonical', () => {
    const returning = SIMPLIFIED_GUIDE_TABLES[3]!;
    const resolution = resolveIdentities(guideTableMessages(returning, IDS), { mode: 'simplified' });
    expect(resolution.clusters).toHaveLength(1);
    expect(resolution.clusters[0]!.id).toBe(U1);
    expect(clusterOf(resolution, U1)).toEqual([`$device:${D1}`, `$device:${D2}`, U1].sort());
  });
});

describe('Simplified ID Merge: rules beyond the tables', () => {
  it('never re-links a device already linked to another user', () => {
    const resolution = resolveIdentities(
      [
        simplified('Viewed', D1),
        simplified('Identified', D1, U1),
        simplified('Viewed', D1),
        simplified('Identified', D1, U2),
      ],
      { mode: 'simplified' },
    );
    expect(resolvedNames(resolution)).toEqual([U1, U1, U1, U2]);
    expect(clusterOf(resolution, U2)).toEqual([U2]);
    expect(resolution.events[3]!.operation).toMatchObject({
      outcome: 'refused',
      reason: 'device_already_linked',
      conflictsWith: U1,
    });
  });

  it('never merges two $user_ids, even through a shared device', () => {
    const resolution = resolveIdentities(
      [simplified('a', D1, U1), simplified('b', D2, U2), simplified('c', D1, U2), simplified('d', D2, U1)],
      { mode: 'simplified' },
    );
    for (const cluster of resolution.clusters) expect(cluster.userIds.length).toBeLessThanOrEqual(1);
    expect(resolvedNames(resolution)).toEqual([U1, U2, U2, U1]);
  });

  it('links only on the first event carrying both IDs, however many follow', () => {
    const resolution = resolveIdentities(
      [simplified('Identified', D1, U1), simplified('a', D1, U1), simplified('b', D1, U1)],
      { mode: 'simplified' },
    );
    expect(resolution.operations).toEqual([
      expect.objectContaining({ index: 0, kind: 'link', outcome: 'merged', ids: [`$device:${D1}`, U1] }),
    ]);
  });

  it('resolves events without $device_id/$user_id by their distinct_id: $device: prefix = device, else user', () => {
    const resolution = resolveIdentities(
      [
        event('old anonymous', { distinct_id: `$device:${D1}` }),
        event('old signed-in', { distinct_id: U1 }),
        simplified('Identified', D1, U1),
      ],
      { mode: 'simplified' },
    );
    expect(resolvedNames(resolution)).toEqual([U1, U1, U1]);
    expect(resolution.events[0]!.retroactive).toBe(true);
    expect(resolution.events[1]!.retroactive).toBe(false);
  });

  it('takes the distinct_id from $user_id, then $device_id, ignoring a contradicting sent distinct_id', () => {
    const resolution = resolveIdentities(
      [
        event('a', { distinct_id: 'something-else', $device_id: D1 }),
        event('b', { distinct_id: 'something-else', $device_id: D1, $user_id: U1 }),
      ],
      { mode: 'simplified' },
    );
    expect(resolution.events.map((e) => [e.distinctIdSent, e.distinctId, e.resolved])).toEqual([
      ['something-else', `$device:${D1}`, U1],
      ['something-else', U1, U1],
    ]);
  });

  it('does not merge on $identify, $create_alias or $merge', () => {
    const resolution = resolveIdentities(
      [
        simplified('Viewed', D1),
        event('$identify', {
          distinct_id: U1,
          $device_id: D1,
          $user_id: U1,
          $anon_id: D1,
          $identified_id: U1,
        }),
        event('$merge', { distinct_id: U1, $distinct_ids: [U1, U2] }),
      ],
      { mode: 'simplified' },
    );
    expect(resolvedNames(resolution)).toEqual([`$device:${D1}`, U1, U1]);
    expect(resolution.operations.map((op) => op.reason)).toEqual([
      'ignored_in_simplified',
      'ignored_in_simplified',
    ]);
  });

  it('keeps a profile set on the device before login apart from the user’s profile', () => {
    const resolution = resolveIdentities(
      [
        simplified('Viewed', D1),
        profileSet(`$device:${D1}`, { plan: 'free' }),
        simplified('Identified', D1, U1),
        profileSet(U1, { name: 'Ada' }),
        profileSet(`$device:${D1}`, { theme: 'dark' }),
      ],
      { mode: 'simplified' },
    );
    expect(resolution.profiles).toEqual([
      expect.objectContaining({
        key: `$device:${D1}`,
        resolved: U1,
        anonymous: true,
        orphaned: true,
        properties: { plan: 'free' },
        updates: [1],
      }),
      // After the link, an update sent to the device ID lands on the user's profile.
      expect.objectContaining({
        key: U1,
        anonymous: false,
        orphaned: false,
        properties: { name: 'Ada', theme: 'dark' },
        updates: [3, 4],
      }),
    ]);
  });
});

describe('Original ID Merge: the guide’s flows', () => {
  // Original's guide has no tables; these follow its prose step by step.
  it('New User Signup: identify(U1) adds U1 and D1 to one cluster, earlier events included', () => {
    const resolution = resolveIdentities(
      [original('Viewed', D1), original('Viewed', D1), identify(D1, U1), original('Purchased', U1)],
      { mode: 'original' },
    );
    expect(clusterOf(resolution, D1)).toEqual([D1, U1].sort());
    expect(resolvedNames(resolution)).toEqual([U1, U1, U1, U1]);
    expect(resolution.events.map((e) => e.retroactive)).toEqual([true, true, false, false]);
  });

  it('Returning User: identify(U1) on a new device adds D2 to the D1+U1 cluster', () => {
    const resolution = resolveIdentities(
      [
        original('Viewed', D1),
        identify(D1, U1),
        original('Viewed', D2),
        original('Viewed', D2),
        identify(D2, U1),
        original('Viewed', U1),
      ],
      { mode: 'original' },
    );
    expect(resolution.clusters).toHaveLength(1);
    expect(clusterOf(resolution, U1)).toEqual([D1, D2, U1].sort());
    expect(new Set(resolvedNames(resolution))).toEqual(new Set([U1]));
  });

  it('Multiple Users, One Device: events after logout stay U1’s; after reset and identify(U2), D2+U2 is its own cluster', () => {
    const resolution = resolveIdentities(
      [
        original('Viewed', D1),
        identify(D1, U1),
        original('Viewed', U1),
        // Logged out without reset: the SDK keeps distinct_id U1.
        original('Viewed', U1),
        // "Sign-up" clicked: reset generated D2.
        original('Viewed', D2),
        identify(D2, U2),
        original('Viewed', U2),
      ],
      { mode: 'original' },
    );
    expect(resolution.clusters.map((c) => c.ids.slice().sort())).toEqual([[D1, U1].sort(), [D2, U2].sort()]);
    expect(resolvedNames(resolution)).toEqual([U1, U1, U1, U1, U2, U2, U2]);
  });
});

describe('Original ID Merge: $identify, $create_alias and $merge rules', () => {
  it('$identify merges only a UUIDv4 $anon_id', () => {
    const notV4 = 'c4d5e6f7-0a1b-1c2d-9e3f-4a5b6c7d8e9f'; // version 1
    const resolution = resolveIdentities(
      [original('Viewed', 'anon-cookie-42'), identify('anon-cookie-42', U1), identify(notV4, U2)],
      { mode: 'original' },
    );
    expect(resolution.operations.map((op) => [op.outcome, op.reason])).toEqual([
      ['refused', 'anon_not_uuid_v4'],
      ['refused', 'anon_not_uuid_v4'],
    ]);
    expect(clusterOf(resolution, 'anon-cookie-42')).toEqual(['anon-cookie-42']);
    expect(resolution.events[0]!.resolved).toBe('anon-cookie-42');
  });

  it('$identify does not merge an $anon_id already merged to another ID', () => {
    const resolution = resolveIdentities([identify(D1, U1), identify(D1, U2), identify(D1, U1)], {
      mode: 'original',
    });
    expect(resolution.operations.map((op) => op.outcome)).toEqual(['merged', 'refused', 'unchanged']);
    expect(resolution.operations[1]).toMatchObject({ reason: 'anon_already_merged', conflictsWith: U1 });
    expect(clusterOf(resolution, U2)).toEqual([U2]);
  });

  it('$identify into an identified ID that already has devices joins its cluster', () => {
    const resolution = resolveIdentities([identify(D1, U1), identify(D2, U1), identify(D3, U1)], {
      mode: 'original',
    });
    expect(clusterOf(resolution, U1)).toEqual([D1, D2, D3, U1].sort());
  });

  it('$create_alias: an alias points at one ID; several aliases may share a target; chains are allowed', () => {
    const resolution = resolveIdentities(
      [
        original('Viewed', D1),
        alias('ada@example.com', D1),
        alias('ada-handle', D1),
        alias('ada-legacy', 'ada@example.com'), // chain: alias of an alias
        original('Viewed', 'bob@example.com'),
        alias('ada-handle', 'bob@example.com'), // already points at D1's cluster
      ],
      { mode: 'original' },
    );
    expect(clusterOf(resolution, D1)).toEqual([D1, 'ada@example.com', 'ada-handle', 'ada-legacy'].sort());
    expect(clusterOf(resolution, 'bob@example.com')).toEqual(['bob@example.com']);
    expect(resolution.operations.at(-1)).toMatchObject({
      outcome: 'refused',
      reason: 'alias_points_elsewhere',
      conflictsWith: D1,
    });
  });

  it('$create_alias refuses an alias already merged into another cluster', () => {
    const resolution = resolveIdentities([identify(D1, U1), original('Viewed', U2), alias(U1, U2)], {
      mode: 'original',
    });
    expect(resolution.operations.at(-1)).toMatchObject({
      outcome: 'refused',
      reason: 'alias_already_merged',
    });
    expect(clusterOf(resolution, U2)).toEqual([U2]);
  });

  it('$merge joins two whole clusters, identified ones included', () => {
    const resolution = resolveIdentities(
      [identify(D1, U1), identify(D2, U2), original('Bought', U2), merge(U1, U2)],
      { mode: 'original' },
    );
    expect(resolution.clusters).toHaveLength(1);
    expect(clusterOf(resolution, U1)).toEqual([D1, D2, U1, U2].sort());
    // U1 became a user first, so it is the canonical ID; the earlier U2 event is retroactively updated.
    expect(resolution.events[2]).toMatchObject({ distinctId: U2, resolved: U1, retroactive: true });
  });

  it('$merge needs exactly two IDs', () => {
    const resolution = resolveIdentities([event('$merge', { $distinct_ids: [U1] })], { mode: 'original' });
    expect(resolution.operations[0]).toMatchObject({ outcome: 'refused', reason: 'missing_ids' });
  });

  it('refuses any merge that would put more than 500 IDs in a cluster', () => {
    const devices = Array.from(
      { length: 520 },
      (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    );
    const resolution = resolveIdentities(
      devices.map((d) => identify(d, U1)),
      { mode: 'original' },
    );
    expect(clusterOf(resolution, U1)).toHaveLength(500);
    const refused = resolution.operations.filter((op) => op.outcome === 'refused');
    expect(refused).toHaveLength(21);
    expect(refused.every((op) => op.reason === 'cluster_limit' && op.clusterSize === 501)).toBe(true);
    // The 500th ID (U1 plus 499 devices) still fits.
    expect(resolution.operations[498]!.outcome).toBe('merged');
    expect(resolution.operations[499]!.outcome).toBe('refused');
  });

  it('refuses a $merge of two clusters whose sizes add up past the limit, and accepts one that fits exactly', () => {
    const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    const messages = [
      ...ids('a', 5).map((id) => merge('a-0', id)),
      ...ids('b', 5).map((id) => merge('b-0', id)),
      merge('a-0', 'b-0'),
      merge('a-0', 'c-0'),
    ];
    const resolution = resolveIdentities(messages, { mode: 'original', clusterLimit: 10 });
    expect(resolution.operations.at(-2)).toMatchObject({ outcome: 'merged', clusterSize: 10 });
    expect(resolution.operations.at(-1)).toMatchObject({
      outcome: 'refused',
      reason: 'cluster_limit',
      clusterSize: 11,
    });
  });
});

describe('resolution in general', () => {
  it('applies profile operations the way /engage does', () => {
    const resolution = resolveIdentities(
      [
        { kind: 'profile', payload: { $distinct_id: U1, $set: { name: 'Ada', plan: 'free' } } },
        { kind: 'profile', payload: { $distinct_id: U1, $set_once: { name: 'Bob', first: 'yes' } } },
        { kind: 'profile', payload: { $distinct_id: U1, $add: { logins: 2 } } },
        { kind: 'profile', payload: { $distinct_id: U1, $add: { logins: 1 } } },
        { kind: 'profile', payload: { $distinct_id: U1, $append: { tags: 'a' } } },
        { kind: 'profile', payload: { $distinct_id: U1, $union: { tags: ['a', 'b'] } } },
        { kind: 'profile', payload: { $distinct_id: U1, $remove: { tags: 'a' } } },
        { kind: 'profile', payload: { $distinct_id: U1, $unset: ['plan'] } },
        { kind: 'profile', payload: { $distinct_id: U2, $set: { name: 'Cy' } } },
        { kind: 'profile', payload: { $distinct_id: U2, $delete: '' } },
      ],
      { mode: 'simplified' },
    );
    expect(resolution.profiles.map((p) => [p.key, p.properties, p.deleted])).toEqual([
      [U1, { name: 'Ada', first: 'yes', logins: 3, tags: ['b'] }, false],
      [U2, {}, true],
    ]);
  });

  it('counts group updates without letting them touch identity', () => {
    const resolution = resolveIdentities(
      [{ kind: 'group', payload: { $group_key: 'company', $group_id: 'acme', $set: { plan: 'pro' } } }],
      { mode: 'simplified' },
    );
    expect(resolution.groupUpdates).toBe(1);
    expect(resolution.clusters).toEqual([]);
  });

  it('leaves its input untouched', () => {
    const messages = [simplified('Viewed', D1), simplified('Identified', D1, U1), profileSet(U1, { a: '1' })];
    const before = JSON.stringify(messages);
    resolveIdentities(messages, { mode: 'simplified' });
    resolveIdentities(messages, { mode: 'original' });
    expect(JSON.stringify(messages)).toBe(before);
  });

  it('guesses the mode from the log', () => {
    expect(inferIdMergeMode([simplified('Viewed', D1)])).toBe('simplified');
    expect(inferIdMergeMode([simplified('Viewed', D1), identify(D1, U1)])).toBe('original');
    expect(inferIdMergeMode([event('Viewed', { distinct_id: D1, $device_id: D1 })])).toBe('original');
    expect(inferIdMergeMode([])).toBe('simplified');
  });
});
