import type { OutgoingMessage } from '@idstitch/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveIdentities } from './resolver.js';

/**
 * Random journeys: a few browsers, a few users, and the calls an app makes (track, identify on login, logout
 * with or without reset, profile updates). The generated messages are stamped the way idstitch's tracker
 * stamps them, so the properties hold for what the tracker really sends.
 */
type Action =
  | { type: 'track'; browser: number }
  | { type: 'identify'; browser: number; user: number }
  | { type: 'logout'; browser: number; reset: boolean }
  | { type: 'profile'; browser: number }
  | { type: 'merge'; a: number; b: number }
  | { type: 'alias'; browser: number; user: number };

const BROWSERS = 3;
const USERS = 4;

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant('track' as const), browser: fc.nat(BROWSERS - 1) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('identify' as const),
      browser: fc.nat(BROWSERS - 1),
      user: fc.nat(USERS - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('logout' as const),
      browser: fc.nat(BROWSERS - 1),
      reset: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('profile' as const), browser: fc.nat(BROWSERS - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('merge' as const), a: fc.nat(USERS - 1), b: fc.nat(USERS - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('alias' as const),
      browser: fc.nat(BROWSERS - 1),
      user: fc.nat(USERS - 1),
    }),
  },
);

/** Deterministic UUIDv4s, so shrunk counterexamples are readable. */
function deviceUuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

function simulate(actions: readonly Action[], mode: 'simplified' | 'original'): OutgoingMessage[] {
  let nextDevice = 0;
  const browsers = Array.from({ length: BROWSERS }, () => ({
    device: deviceUuid(nextDevice++),
    user: null as string | null,
  }));
  const messages: OutgoingMessage[] = [];
  const emit = (
    name: string,
    browser: { device: string; user: string | null },
    extra: Record<string, unknown> = {},
  ) => {
    const distinctId =
      mode === 'simplified'
        ? (browser.user ?? `$device:${browser.device}`)
        : (browser.user ?? browser.device);
    messages.push({
      kind: 'event',
      payload: {
        event: name,
        properties: {
          distinct_id: distinctId,
          time: 1_700_000_000_000 + messages.length,
          $insert_id: `m${messages.length}`,
          $device_id: browser.device,
          ...(browser.user === null ? {} : { $user_id: browser.user }),
          ...extra,
        } as never,
      },
    });
  };
  for (const a of actions) {
    if (a.type === 'merge') {
      if (mode === 'original' && a.a !== a.b) {
        messages.push({
          kind: 'event',
          payload: {
            event: '$merge',
            properties: {
              distinct_id: `user-${a.a}`,
              time: 1,
              $insert_id: `m${messages.length}`,
              $distinct_ids: [`user-${a.a}`, `user-${a.b}`],
            },
          },
        });
      }
      continue;
    }
    const browser = browsers[a.browser]!;
    switch (a.type) {
      case 'track':
        emit('Viewed', browser);
        break;
      case 'identify': {
        const user = `user-${a.user}`;
        if (browser.user === user) break;
        const anon = browser.device;
        browser.user = user;
        if (mode === 'simplified') emit('Identified', browser);
        else emit('$identify', browser, { distinct_id: user, $anon_id: anon, $identified_id: user });
        break;
      }
      case 'logout':
        browser.user = null;
        if (a.reset) browser.device = deviceUuid(nextDevice++);
        break;
      case 'profile':
        messages.push({
          kind: 'profile',
          payload: {
            $distinct_id:
              browser.user ?? (mode === 'simplified' ? `$device:${browser.device}` : browser.device),
            $set: { seen: messages.length },
          },
        });
        break;
      case 'alias':
        if (mode === 'original')
          emit('$create_alias', browser, {
            distinct_id: browser.user ?? browser.device,
            alias: `alias-${a.user}`,
          });
        break;
    }
  }
  return messages;
}

const journeys = fc.array(action, { minLength: 1, maxLength: 60 });

describe('resolution properties over random journeys', () => {
  it('is deterministic and leaves the messages untouched (both APIs)', () => {
    fc.assert(
      fc.property(journeys, fc.constantFrom('simplified' as const, 'original' as const), (actions, mode) => {
        const messages = simulate(actions, mode);
        const before = JSON.stringify(messages);
        const first = resolveIdentities(messages, { mode });
        const second = resolveIdentities(JSON.parse(before) as OutgoingMessage[], { mode });
        expect(second).toEqual(first);
        expect(JSON.stringify(messages)).toBe(before);
      }),
    );
  });

  it('Simplified: never puts two $user_ids in one cluster, and every signed-in event resolves to its $user_id', () => {
    fc.assert(
      fc.property(journeys, (actions) => {
        const resolution = resolveIdentities(simulate(actions, 'simplified'), { mode: 'simplified' });
        for (const cluster of resolution.clusters) {
          expect(cluster.ids.filter((id) => !id.startsWith('$device:')).length).toBeLessThanOrEqual(1);
        }
        for (const event of resolution.events)
          if (event.userId !== null) expect(event.resolved).toBe(event.userId);
      }),
    );
  });

  it('Simplified: an anonymous event resolves to the user of the first event pairing its device, else the device', () => {
    fc.assert(
      fc.property(journeys, (actions) => {
        const messages = simulate(actions, 'simplified');
        // A naive oracle written straight from the guide's rule.
        const firstUser = new Map<string, string>();
        for (const m of messages) {
          if (m.kind !== 'event') continue;
          const { $device_id: d, $user_id: u } = m.payload.properties;
          if (d !== undefined && u !== undefined && !firstUser.has(d)) firstUser.set(d, u);
        }
        const resolution = resolveIdentities(messages, { mode: 'simplified' });
        for (const event of resolution.events) {
          if (event.userId !== null || event.deviceId === null) continue;
          expect(event.resolved).toBe(firstUser.get(event.deviceId) ?? `$device:${event.deviceId}`);
        }
      }),
    );
  });

  it('never splits what an earlier prefix of the log had merged (merges only grow)', () => {
    fc.assert(
      fc.property(
        journeys,
        fc.constantFrom('simplified' as const, 'original' as const),
        fc.nat(),
        (actions, mode, cut) => {
          const messages = simulate(actions, mode);
          const prefix = messages.slice(0, cut % (messages.length + 1));
          const full = resolveIdentities(messages, { mode });
          const clusterOf = new Map<string, string>();
          for (const cluster of full.clusters) for (const id of cluster.ids) clusterOf.set(id, cluster.id);
          for (const cluster of resolveIdentities(prefix, { mode }).clusters) {
            expect(new Set(cluster.ids.map((id) => clusterOf.get(id))).size).toBe(1);
          }
        },
      ),
    );
  });

  it('Original: no cluster ever exceeds the ID limit, and every refusal for the limit was a real overflow', () => {
    fc.assert(
      fc.property(journeys, fc.integer({ min: 2, max: 8 }), (actions, clusterLimit) => {
        const resolution = resolveIdentities(simulate(actions, 'original'), {
          mode: 'original',
          clusterLimit,
        });
        for (const cluster of resolution.clusters)
          expect(cluster.ids.length).toBeLessThanOrEqual(clusterLimit);
        for (const op of resolution.operations) {
          if (op.reason === 'cluster_limit') expect(op.clusterSize).toBeGreaterThan(clusterLimit);
        }
      }),
    );
  });

  it('Original: never exceeds 500 IDs even when one user collects hundreds of devices', () => {
    const manyResets: Action[] = Array.from({ length: 1300 }, (_, i) =>
      i % 2 === 0 ? { type: 'identify', browser: 0, user: 0 } : { type: 'logout', browser: 0, reset: true },
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 30 }), (noise) => {
        const resolution = resolveIdentities(simulate([...manyResets, ...noise], 'original'), {
          mode: 'original',
        });
        const sizes = resolution.clusters.map((c) => c.ids.length);
        expect(Math.max(...sizes)).toBe(500);
      }),
      { numRuns: 20 },
    );
  });

  it('Original: a refused $identify, $create_alias or $merge never changes any cluster', () => {
    fc.assert(
      fc.property(journeys, (actions) => {
        const messages = simulate(actions, 'original');
        const full = resolveIdentities(messages, { mode: 'original' });
        for (const op of full.operations) {
          if (op.outcome !== 'refused') continue;
          const before = resolveIdentities(messages.slice(0, op.index), { mode: 'original' });
          const after = resolveIdentities(messages.slice(0, op.index + 1), { mode: 'original' });
          const merged = (r: typeof before) =>
            r.clusters.filter((c) => c.ids.length > 1).map((c) => c.ids.slice().sort());
          expect(merged(after)).toEqual(merged(before));
        }
      }),
      { numRuns: 50 },
    );
  });
});
