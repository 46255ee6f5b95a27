import { describe, expect, it } from 'vitest';
import { createIdstitch } from '../create.js';
import type { IdstitchError } from '../errors.js';
import { validateUnlessValidated } from '../messages/validate.js';
import { fakeRequestPort, MemorySink } from '../testing/index.js';

const SECRET = 'unit-test-secret-0123456789';

function setup() {
  const sink = new MemorySink();
  const errors: IdstitchError[] = [];
  const engine = createIdstitch<{ userId?: string }>(
    { sink, onError: (error) => errors.push(error), cookie: { secret: SECRET } },
    { resolveUserId: (request) => request.userId },
  );
  return { sink, errors, engine };
}

describe('a light tracker', () => {
  it('makes people once, on first use, with methods that work detached', () => {
    const { sink, engine } = setup();
    const tracker = engine.forUser('user-42');
    expect(Object.keys(tracker)).not.toContain('people');
    const { people } = tracker;
    expect(tracker.people).toBe(people);
    const { set, increment } = people;
    set('plan', 'pro');
    increment('logins');
    expect(sink.profileUpdates.map((update) => [update.$distinct_id, update.$set ?? update.$add])).toEqual([
      ['user-42', { plan: 'pro' }],
      ['user-42', { logins: 1 }],
    ]);
  });

  it('carries registered properties and groups once they exist, and none before', () => {
    const { sink, engine } = setup();
    const scope = engine.handle(fakeRequestPort({ request: { userId: 'user-42' } }));
    scope.tracker.track('First');
    scope.tracker.register({ plan: 'pro' });
    scope.tracker.group('company', 'acme');
    scope.tracker.track('Second', { plan: 'team' });
    const [first] = sink.eventsNamed('First');
    const [second] = sink.eventsNamed('Second');
    expect(first?.properties).not.toHaveProperty('plan');
    expect(second?.properties).toMatchObject({ plan: 'team', company: 'acme', distinct_id: 'user-42' });
  });

  it('stamps a caller time in the stamp’s place and never lets properties choose identity', () => {
    const { sink, engine } = setup();
    const when = Date.now() - 60_000;
    engine.forUser('user-42').track('Paid', { a: 1, time: when, distinct_id: 'victim', $insert_id: 'x' });
    const properties = sink.events[0]?.properties;
    expect(properties).toMatchObject({ a: 1, time: when, distinct_id: 'user-42', $user_id: 'user-42' });
    expect(properties?.$insert_id).not.toBe('x');
    expect(Object.keys(properties ?? {}).slice(-4)).toEqual([
      'distinct_id',
      'time',
      '$insert_id',
      '$user_id',
    ]);
  });

  it('stamps properties in one order: library, super properties, registered, the caller’s (winning), identity', () => {
    const sink = new MemorySink();
    const engine = createIdstitch(
      { sink, cookie: { secret: SECRET }, superProperties: { app: 'shop', plan: 'free', region: 'eu' } },
      { resolveUserId: () => undefined },
    );
    const tracker = engine.forUser('user-42');
    tracker.register({ team: 'payments', region: 'us' });
    tracker.track('Paid', { plan: 'pro', a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9 });
    const properties = sink.events[0]?.properties ?? {};
    expect(Object.keys(properties)).toEqual([
      'mp_lib',
      '$lib_version',
      'app',
      'plan',
      'region',
      'team',
      'a',
      'b',
      'c',
      'd',
      'e',
      'f',
      'g',
      'h',
      'i',
      'distinct_id',
      'time',
      '$insert_id',
      '$user_id',
    ]);
    expect(properties).toMatchObject({ plan: 'pro', region: 'us', team: 'payments' });
  });

  it('hands the sink payloads branded as validated, which it then does not check again', () => {
    const { sink, engine } = setup();
    engine.forUser('user-42').track('Paid');
    engine.forUser('user-42').people.set('plan', 'pro');
    for (const message of sink.messages) {
      expect(validateUnlessValidated(message)).toBeUndefined();
      // Tampering after the fact is not the sink's to catch; a copy, though, is checked again.
      const copy = { ...message, payload: { ...message.payload, $distinct_id: 'null' } } as typeof message;
      if (message.kind === 'profile') expect(validateUnlessValidated(copy)?.field).toBe('$distinct_id');
    }
  });
});
