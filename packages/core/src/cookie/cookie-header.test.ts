import { parse } from 'cookie';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cookieValues } from './cookie-header.js';

/** What `cookieValues` did before it parsed in place: split on `;`, then the `cookie` package per pair. */
function reference(header: string | undefined, name: string): string[] {
  if (!header || header.indexOf(name) === -1) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    const value = parse(pair)[name];
    if (value !== undefined) values.push(value);
  }
  return values;
}

const NAME = 'idstitch_device';

describe('cookieValues', () => {
  it('returns every value of the name, in header order, trimmed and decoded', () => {
    const header = ` a=1; ${NAME}=first;\t${NAME} = "two" ;${NAME}=%41%zz;x${NAME}=no;${NAME}x=no; ${NAME}=%C3%A9`;
    expect(cookieValues(header, NAME)).toEqual(['first', '"two"', '%41%zz', 'é']);
    expect(cookieValues(header, NAME)).toEqual(reference(header, NAME));
    expect(cookieValues(undefined, NAME)).toEqual([]);
    expect(cookieValues(`${NAME}`, NAME)).toEqual([]);
    expect(cookieValues(`${NAME}=`, NAME)).toEqual(['']);
  });

  it('reads any header exactly as the cookie package does, pair by pair', () => {
    const piece = fc.constantFrom(
      NAME,
      '=',
      ';',
      ' ',
      '\t',
      '\n',
      '\r',
      '\u00a0',
      '%',
      '%41',
      '%E0',
      '"',
      'a',
      'x',
      ',',
    );
    const header = fc.array(piece, { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(header, (text) => {
        expect(cookieValues(text, NAME)).toEqual(reference(text, NAME));
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1, maxLength: 4 }), (text, name) => {
        expect(cookieValues(text, name)).toEqual(reference(text, name));
      }),
    );
  });
});
