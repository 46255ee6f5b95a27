import type { OutgoingMessage } from '@idstitch/core';
import { describe, expect, it } from 'vitest';
import type { QaFinding } from './qa.js';
import { findIdentityIssues } from './qa.js';
import type { IdMergeMode } from './resolver.js';
import { resolveIdentities } from './resolver.js';

const D1 = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';
const D2 = 'c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f';
const U1 = 'user-1001';
const U2 = 'user-1002';

let clock = 0;
function event(name: string, properties: Record<string, unknown>): OutgoingMessage {
  clock += 1;
  return {
    kind: 'event',
    payload: { event: name, properties: { time: clock, $insert_id: `i${clock}`, ...properties } as never },
  };
}
function tracked(name: string, deviceId: string, userId?: string, distinctId?: string): OutgoingMessage {
  return event(name, {
    distinct_id: distinctId ?? userId ?? `$device:${deviceId}`,
    $device_id: deviceId,
    ...(userId === undefined ? {} : { $user_id: userId }),
  });
}
function identify(anon: string, identified: string): OutgoingMessage {
  return event('$identify', { distinct_id: identified, $anon_id: anon, $identified_id: identified });
}

function qa(messages: OutgoingMessage[], mode: IdMergeMode, clusterLimit?: number): QaFinding[] {
  return findIdentityIssues(
    resolveIdentities(messages, clusterLimit === undefined ? { mode } : { mode, clusterLimit }),
  );
}
function kinds(findings: QaFinding[]): string[] {
  return findings.map((f) => f.kind);
}

describe('QA findings', () => {
  it('finds nothing in a clean Simplified journey (the guide’s three flows done right)', () => {
    const findings = qa(
      [
        tracked('Viewed', D1),
        tracked('Identified', D1, U1),
        tracked('Viewed', D1, U1),
        // Logout with reset: the next user is on D2.
        tracked('Viewed', D2),
        tracked('Identified', D2, U2),
        { kind: 'profile', payload: { $distinct_id: U2, $set: { name: 'Bo' } } },
      ],
      'simplified',
    );
    expect(findings).toEqual([]);
  });

  it('flags a profile created for an anonymous device, pointing at the update', () => {
    const messages: OutgoingMessage[] = [
      tracked('Viewed', D1),
      { kind: 'profile', payload: { $distinct_id: `$device:${D1}`, $set: { plan: 'free' } } },
      tracked('Identified', D1, U1),
    ];
    const [finding] = qa(messages, 'simplified');
    expect(finding).toMatchObject({ kind: 'anonymous_profile', messages: [1] });
    expect(finding!.title).toContain(`$device:${D1}`);
    // The device was linked later, so the properties never reach U1's profile: say so.
    expect(finding!.detail).toContain(`${U1}'s profile lacks them`);
  });

  it('flags a device seen with two users, and the switch without reset, with the events that show it', () => {
    const messages = [
      tracked('Identified', D1, U1), // 0
      tracked('Viewed', D1), // 1: U1 logged out, no reset
      tracked('Viewed', D1), // 2
      tracked('Identified', D1, U2), // 3: U2 logs in on the same device
    ];
    const findings = qa(messages, 'simplified');
    expect(kinds(findings)).toEqual(['shared_device', 'user_switch_without_reset']);
    expect(findings[0]).toMatchObject({ severity: 'error', messages: [0, 3] });
    expect(findings[0]!.detail).toContain(`linked it to ${U1} only`);
    expect(findings[1]).toMatchObject({ messages: [0, 1, 2, 3] });
    expect(findings[1]!.detail).toContain(`The 2 anonymous events in between resolve to ${U1}`);
  });

  it('Original: flags $identify with a non-UUIDv4 $anon_id', () => {
    const findings = qa(
      [event('Viewed', { distinct_id: 'cookie-42' }), identify('cookie-42', U1)],
      'original',
    );
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'identify_anon_not_uuid_v4', severity: 'error', messages: [1] }),
    ]);
  });

  it('Original: flags $identify with an $anon_id already merged to another user', () => {
    const findings = qa([identify(D1, U1), identify(D1, U2)], 'original');
    expect(findings).toContainEqual(
      expect.objectContaining({ kind: 'identify_anon_already_merged', messages: [1] }),
    );
    expect(findings.find((f) => f.kind === 'identify_anon_already_merged')!.title).toContain(
      `${D1} is already merged with ${U1}`,
    );
    // The same device carried two users, too.
    expect(kinds(findings)).toContain('shared_device');
  });

  it('Original: flags clusters within 10% of the limit, and refused merges past it', () => {
    const devices = Array.from(
      { length: 10 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    const near = qa(
      devices.slice(0, 8).map((d) => identify(d, U1)),
      'original',
      10,
    );
    // 9 IDs (U1 + 8 devices) of 10: within 10%.
    expect(near).toEqual([
      expect.objectContaining({ kind: 'cluster_near_limit', messages: [0, 1, 2, 3, 4, 5, 6, 7] }),
    ]);
    expect(
      qa(
        devices.slice(0, 7).map((d) => identify(d, U1)),
        'original',
        10,
      ),
    ).toEqual([]);

    const over = qa(
      devices.map((d) => identify(d, U1)),
      'original',
      10,
    );
    expect(kinds(over)).toEqual(['merge_refused_cluster_limit', 'cluster_near_limit']);
    expect(over[0]).toMatchObject({ messages: [9] });
  });

  it('flags events whose distinct_id disagrees with their IDs, grouped per pair', () => {
    const findings = qa(
      [
        tracked('a', D1, U1, 'someone-else'),
        tracked('b', D1, U1, 'someone-else'),
        tracked('c', D2, undefined, D2),
      ],
      'simplified',
    );
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'distinct_id_mismatch', messages: [0, 1] }),
      expect.objectContaining({ kind: 'distinct_id_mismatch', messages: [2] }),
    ]);
    expect(findings[1]!.title).toContain(`sent distinct_id ${D2} but their IDs say $device:${D2}`);
  });

  it('Original: flags a distinct_id that resolves to another person than the $user_id', () => {
    const findings = qa(
      [
        identify(D1, U1),
        event('Viewed', { distinct_id: U1, $device_id: D1, $user_id: U1 }), // consistent
        event('Viewed', { distinct_id: D1, $device_id: D1, $user_id: U1 }), // D1 is in U1's cluster: fine
        event('Viewed', { distinct_id: U2, $device_id: D1, $user_id: U1 }), // wrong person
      ],
      'original',
    );
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'distinct_id_mismatch', severity: 'error', messages: [3] }),
    ]);
  });

  it('Simplified: flags identity events it ignores, and events with no ID at all', () => {
    const findings = qa([identify(D1, U1), identify(D2, U2), event('Orphan', {})], 'simplified');
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'missing_ids', severity: 'error', messages: [2] }),
      expect.objectContaining({ kind: 'identity_event_ignored', messages: [0, 1] }),
    ]);
  });

  it('Original: flags a refused alias', () => {
    const findings = qa(
      [
        event('$create_alias', { distinct_id: D1, alias: 'ada' }),
        event('$create_alias', { distinct_id: D2, alias: 'ada' }),
      ],
      'original',
    );
    expect(findings).toEqual([expect.objectContaining({ kind: 'alias_refused', messages: [1] })]);
  });

  it('lists errors before warnings', () => {
    const findings = qa(
      [
        { kind: 'profile', payload: { $distinct_id: D2, $set: { a: 1 } } },
        event('Viewed', { distinct_id: 'cookie-1' }),
        identify('cookie-1', U1),
      ],
      'original',
    );
    expect(findings.map((f) => f.severity)).toEqual(['error', 'warning']);
  });
});
