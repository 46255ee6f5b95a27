import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INVALID_ID_VALUES } from './limits.js';
import type { MixpanelEvent } from './types.js';
import { isPlaceholderId, isValidInsertId, validateEvent, validateStampedEvent } from './validate.js';

/** The checks as they were written before they lost their regular expression and their allocations. */
const placeholderBefore = (id: string) => INVALID_ID_VALUES.has(id.trim().toLowerCase());
const insertIdBefore = (id: unknown) =>
  typeof id === 'string' &&
  id.length > 0 &&
  id.length <= 36 &&
  /^[A-Za-z0-9-]+$/.test(id) &&
  !placeholderBefore(id);

const padding = fc.constantFrom('', ' ', '\t', '\n', '\u00a0', '\ufeff', ' '.repeat(40), '\u2003'.repeat(37));
const idLike = fc.oneof(
  fc.string({ maxLength: 45 }),
  fc.constantFrom(
    ...INVALID_ID_VALUES,
    'NULL',
    'Undefined',
    'user-42',
    `$device:${'a'.repeat(36)}`,
    '-',
    'a-b-c',
  ),
  fc
    .tuple(padding, fc.constantFrom(...INVALID_ID_VALUES, 'x'.repeat(37)), padding)
    .map((parts) => parts.join('')),
  fc.uuid(),
);

describe('ID checks', () => {
  it('isPlaceholderId answers as trim + lower-case + lookup did', () => {
    fc.assert(
      fc.property(idLike, (id) => {
        expect(isPlaceholderId(id)).toBe(placeholderBefore(id));
      }),
      {
        numRuns: 5000,
      },
    );
  });

  it('isValidInsertId answers as the regular expression did', () => {
    fc.assert(
      fc.property(
        fc.oneof(idLike, fc.constantFrom(undefined, 42, null, 'é', 'a_b', 'a\n', 'x'.repeat(36))),
        (id) => {
          expect(isValidInsertId(id)).toBe(insertIdBefore(id));
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('validateStampedEvent', () => {
  const event = (properties: Record<string, unknown>): MixpanelEvent =>
    ({
      event: 'Signed Up',
      properties: { time: Date.now(), $insert_id: 'abc-1', ...properties },
    }) as MixpanelEvent;

  it('checks what a caller can influence as validateEvent does', () => {
    for (const properties of [
      { distinct_id: 'user-42' },
      { distinct_id: ' null ' },
      { distinct_id: 42 },
      { distinct_id: 'u', time: Number.NaN },
      { distinct_id: 'u', time: 1 },
      { distinct_id: 'u', time: Date.now() + 2 * 60 * 60 * 1000 },
    ]) {
      expect(validateStampedEvent(event(properties))).toEqual(validateEvent(event(properties)));
    }
  });

  it('counts properties as validateEvent does', () => {
    const many = event({
      distinct_id: 'u',
      ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, i])),
    });
    expect(validateStampedEvent(many)).toEqual(validateEvent(many));
    expect(validateStampedEvent(many)?.field).toBe('properties');
  });

  it('trusts the $insert_id the tracker stamped or checked', () => {
    const stamped = event({ distinct_id: 'u', $insert_id: 'not checked again' });
    expect(validateStampedEvent(stamped)).toBeUndefined();
    expect(validateEvent(stamped)?.field).toBe('properties.$insert_id');
  });
});
