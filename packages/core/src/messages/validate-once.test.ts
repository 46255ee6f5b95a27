import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from './types.js';
import { markValidated, validateUnlessValidated } from './validate.js';

const event = (): OutgoingMessage => ({
  kind: 'event',
  payload: { event: 'x', properties: { distinct_id: 'null', time: Date.now(), $insert_id: 'id-1' } },
});

describe('validateUnlessValidated', () => {
  it('still checks payloads nobody validated, so other producers cannot slip bad messages through', () => {
    expect(validateUnlessValidated(event())?.field).toBe('properties.distinct_id');
  });

  it('trusts only the exact payload object the tracker marked', () => {
    const marked = event();
    markValidated(marked.payload);
    expect(validateUnlessValidated(marked)).toBeUndefined();
    const copy = { ...marked, payload: structuredClone(marked.payload) } as OutgoingMessage;
    expect(validateUnlessValidated(copy)).toBeDefined();
  });

  it('cannot be fooled by a forged brand: a copy, a spread, a JSON round trip or the global slot itself', () => {
    const marked = event();
    markValidated(marked.payload);
    const slot = Symbol.for('idstitch.validatedBrand');
    const forgeries: OutgoingMessage['payload'][] = [
      { ...marked.payload },
      Object.assign(Object.create(Object.getPrototypeOf(marked.payload)), marked.payload),
      JSON.parse(JSON.stringify(marked.payload)),
      { ...event().payload, [slot]: true } as never,
      { ...event().payload, [Symbol.for('idstitch.validatedPayloads')]: true } as never,
      Object.create(marked.payload),
    ];
    for (const payload of forgeries) {
      expect(validateUnlessValidated({ kind: 'event', payload } as OutgoingMessage)?.field).toBe(
        'properties.distinct_id',
      );
    }
    // The brand is invisible to serialisation and key listing.
    expect(Object.getOwnPropertySymbols(marked.payload)).toEqual([]);
    expect(Reflect.ownKeys(marked.payload)).toEqual(['event', 'properties']);
  });

  it('marks a payload twice without throwing', () => {
    const marked = event();
    markValidated(marked.payload);
    expect(() => markValidated(marked.payload)).not.toThrow();
    expect(validateUnlessValidated(marked)).toBeUndefined();
  });

  it('checks a message whose payload is not an object without throwing', () => {
    expect(validateUnlessValidated({ kind: 'event', payload: 'x' } as never)?.field).toBe('event');
  });

  it('rejects a non-message without throwing', () => {
    expect(validateUnlessValidated(null as never)?.field).toBe('kind');
  });
});
