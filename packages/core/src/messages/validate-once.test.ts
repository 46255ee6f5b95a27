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

  it('rejects a non-message without throwing', () => {
    expect(validateUnlessValidated(null as never)?.field).toBe('kind');
  });
});
