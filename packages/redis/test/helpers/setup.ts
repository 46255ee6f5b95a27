import type { IdstitchError, MixpanelSinkOptions } from '@idstitch/core';
import type { FakeMixpanel } from '@idstitch/fake-mixpanel';
import type { Redis } from 'ioredis';

export const TOKEN = 'fake-token';
export const API_SECRET = 'api-secret';

/** Mixpanel options aimed at the fake, with batching and backoff in milliseconds instead of seconds. */
export function fastMixpanel(
  fake: FakeMixpanel,
  options: Partial<MixpanelSinkOptions> = {},
): MixpanelSinkOptions {
  return {
    token: TOKEN,
    apiSecret: API_SECRET,
    host: fake.url,
    flushIntervalMs: 20,
    requestTimeoutMs: 2000,
    retry: { minDelayMs: 10, maxDelayMs: 40, jitter: 0, maxRetries: 1000 },
    ...options,
  };
}

/** Collects what a component reports. */
export function errorLog() {
  const errors: IdstitchError[] = [];
  return {
    errors,
    onError: (error: IdstitchError) => errors.push(error),
    codes: () => errors.map((error) => error.code),
    states: (code: string) => errors.filter((e) => e.code === code).map((e) => e.details.state),
  };
}

/** Entries pending in the consumer group (read by a worker, not acknowledged). 0 when there is no group. */
export async function pendingCount(
  redis: Redis,
  stream: string,
  group = 'idstitch-delivery',
): Promise<number> {
  try {
    const summary = (await redis.xpending(stream, group)) as [number, ...unknown[]];
    return Number(summary[0]);
  } catch {
    return 0;
  }
}
