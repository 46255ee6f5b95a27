import { describe, expect, it } from 'vitest';
import { isRetryableStatus, parseRetryAfter, retryDelay } from './retry.js';

const policy = {
  minDelayMs: 2000,
  maxDelayMs: 60_000,
  jitter: 0.2,
  maxRetries: 10,
  maxDurationMs: 600_000,
  maxRetryAfterMs: 300_000,
};

describe('retry policy', () => {
  it('retries timeouts, rate limits and transient server faults only', () => {
    const retried = [408, 429, 500, 502, 503, 504, 507, 599].filter(isRetryableStatus);
    const final = [200, 400, 401, 403, 404, 410, 413, 501, 505, 511].filter(isRetryableStatus);
    expect(retried).toEqual([408, 429, 500, 502, 503, 504, 507, 599]);
    expect(final).toEqual([]);
  });

  it('doubles from 2 s to a 60 s ceiling', () => {
    const delays = Array.from({ length: 8 }, (_, i) => retryDelay(i + 1, policy, () => 0));
    expect(delays).toEqual([2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('takes up to the jitter share off each wait, never adding to it', () => {
    expect(retryDelay(1, policy, () => 0.999_999)).toBe(1600);
    expect(retryDelay(6, policy, () => 0.5)).toBe(54_000);
    for (let i = 0; i < 200; i += 1) {
      const delay = retryDelay(3, policy, Math.random);
      expect(delay).toBeGreaterThanOrEqual(6400);
      expect(delay).toBeLessThanOrEqual(8000);
    }
  });

  it('lets Retry-After win, capped', () => {
    expect(retryDelay(1, policy, () => 0.5, 7000)).toBe(7000);
    expect(retryDelay(1, policy, () => 0.5, 3_600_000)).toBe(300_000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now - 30_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-3', now)).toBeUndefined();
  });
});
