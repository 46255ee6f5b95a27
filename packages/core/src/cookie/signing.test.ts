import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { portableSigner, signer } from './signing.js';

describe('signing seam', () => {
  it('uses node:crypto on Node, reached without a node: import', () => {
    expect(signer).not.toBe(portableSigner);
  });

  it('the portable signer (runtimes without node:crypto) computes exactly what Node computes', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 80 }), fc.string({ maxLength: 200 }), (key, value) => {
        const node = createHmac('sha256', key).update(value).digest('base64url');
        expect(portableSigner.hmac(key, value)).toBe(node);
        expect(signer.hmac(key, value)).toBe(node);
      }),
      { numRuns: 300 },
    );
  });

  it('signs with a key made once per secret exactly as with the secret string, any text included', () => {
    const key = fc.oneof(
      fc.constantFrom(
        'bench-cookie-secret-0123456789',
        'é\u{1F600}-secret-0123456789',
        '\uD800-lone-surrogate-key',
      ),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
    );
    fc.assert(
      fc.property(key, fc.string({ unit: 'binary', maxLength: 100 }), (secret, value) => {
        expect(signer.hmac(secret, value)).toBe(
          createHmac('sha256', secret).update(value).digest('base64url'),
        );
        expect(signer.hmac(secret, value)).toBe(portableSigner.hmac(secret, value));
      }),
      { numRuns: 500 },
    );
  });

  it('compares in constant time and refuses different lengths', () => {
    expect(portableSigner.equal('abc', 'abc')).toBe(true);
    expect(portableSigner.equal('abc', 'abd')).toBe(false);
    expect(portableSigner.equal('abc', 'abcd')).toBe(false);
  });
});
