import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256 of `value`, base64url without padding. */
export function hmac(secret: string, value: string): string {
  return createHmac('sha256', secret).update(value).digest('base64url');
}

/** Constant-time comparison of two base64url strings (false when their lengths differ). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Which secret signed `value`: 0 for the current one, a higher index for a retired one that must be
 * re-signed, or -1 when none did.
 */
export function verifyingSecret(secrets: readonly string[], value: string, signature: string): number {
  for (let i = 0; i < secrets.length; i++) {
    if (safeEqual(hmac(secrets[i] as string, value), signature)) return i;
  }
  return -1;
}
