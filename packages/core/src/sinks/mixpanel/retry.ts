import type { MixpanelRetryOptions } from './options.js';

/**
 * Statuses worth retrying: a timeout, a rate limit, and server faults that a later attempt can
 * outlive. 501 (not implemented), 505 (HTTP version) and 511 (captive portal) will not change by
 * retrying, so they are not here (the same split as Segment's and OTLP's exporters).
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505 && status !== 511;
}

/**
 * Reads a `Retry-After` header: delta-seconds or an HTTP date. Returns milliseconds to wait, or
 * `undefined` when the header is absent or unreadable (then normal backoff applies).
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date always names a weekday or month; without letters, `Date.parse` guesses at years.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Wait before retry number `retry` (1 for the first retry): exponential from `minDelayMs`, doubling
 * up to `maxDelayMs`, minus a random share of up to `jitter` so that processes hit by the same outage
 * spread out. A `Retry-After` from the server wins, shortened to `maxRetryAfterMs`.
 */
export function retryDelay(
  retry: number,
  options: Required<MixpanelRetryOptions>,
  random: () => number,
  retryAfterMs?: number,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, options.maxRetryAfterMs);
  const exponential = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** Math.min(retry - 1, 30));
  const share = Math.min(1, Math.max(0, random()));
  return Math.round(exponential * (1 - options.jitter * share));
}
