import type { OutgoingMessage } from '@idstitch/core';
import { describe, expect, it } from 'vitest';
import { buildSnapshot } from './snapshot.js';

const D1 = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';

function event(name: string, time: number, userId?: string): OutgoingMessage {
  return {
    kind: 'event',
    payload: {
      event: name,
      properties: {
        distinct_id: userId ?? `$device:${D1}`,
        time,
        $insert_id: `${name}-${time}`,
        $device_id: D1,
        token: 'project-token',
        $browser: 'Chrome',
        ...(userId === undefined ? {} : { $user_id: userId }),
      },
    },
  };
}

// U2 signs in on U1's device without a reset.
const messages = [event('Viewed', 1), event('Identified', 2, 'U1'), event('Identified', 3, 'U2')];
const snapshot = buildSnapshot(
  { messages, lineNumbers: [1, 2, 4], unreadable: [] },
  { source: 'events.ndjson', revision: 7, now: 99 },
);

describe('buildSnapshot', () => {
  it('draws each ID as a node of its cluster, and each link with the event that made or asked for it', () => {
    expect(snapshot.nodes).toEqual([
      { id: `$device:${D1}`, kind: 'device', label: D1, cluster: 'U1' },
      { id: 'U1', kind: 'user', label: 'U1', cluster: 'U1' },
      { id: 'U2', kind: 'user', label: 'U2', cluster: 'U2' },
    ]);
    expect(
      snapshot.links.map(({ from, to, outcome, reason, event, line, time }) => ({
        from,
        to,
        outcome,
        reason,
        event,
        line,
        time,
      })),
    ).toEqual([
      {
        from: `$device:${D1}`,
        to: 'U1',
        outcome: 'merged',
        reason: null,
        event: 'Identified',
        line: 2,
        time: 2,
      },
      {
        from: `$device:${D1}`,
        to: 'U2',
        outcome: 'refused',
        reason: 'device_already_linked',
        event: 'Identified',
        line: 4,
        time: 3,
      },
    ]);
    expect(snapshot.links[1]!.explanation).toBe(`not linked: ${D1} is already linked to U1`);
  });

  it('gives each person a timeline: sent vs resolved, retroactive marks, properties without identity fields', () => {
    const u1 = snapshot.people.find((p) => p.cluster === 'U1')!;
    expect(u1.entries.map((e) => [e.event, e.distinctIdSent, e.resolved, e.retroactive])).toEqual([
      ['Viewed', `$device:${D1}`, 'U1', true],
      ['Identified', 'U1', 'U1', false],
    ]);
    expect(u1.entries[0]!.properties).toEqual({ $browser: 'Chrome' });
  });

  it('ties findings to the timeline entries they point at', () => {
    const kinds = snapshot.findings.map((f) => f.kind);
    expect(kinds).toContain('shared_device');
    const shared = kinds.indexOf('shared_device');
    const u2 = snapshot.people.find((p) => p.cluster === 'U2')!;
    expect(u2.entries[0]!.findings).toContain(shared);
    expect(snapshot.findings[shared]!.evidence.map((e) => [e.line, e.cluster])).toEqual([
      [2, 'U1'],
      [4, 'U2'],
    ]);
    expect([snapshot.revision, snapshot.builtAt, snapshot.mode, snapshot.modeInferred]).toEqual([
      7,
      99,
      'simplified',
      true,
    ]);
  });
});
