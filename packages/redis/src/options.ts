import { IdstitchOptionsError } from '@idstitch/core';

/** Checks an integer option, filling in its default. */
export function positiveInteger(
  value: unknown,
  option: string,
  fallback: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IdstitchOptionsError(
      option,
      `must be an integer from ${min} to ${max}, got ${String(value)}`,
      `Pass a value in that range or leave it out for the default (${fallback}).`,
    );
  }
  return value;
}

/** The key prefix of everything idstitch keeps in Redis when no `prefix` is given. */
export const DEFAULT_PREFIX = 'idstitch:';

/** The key prefix: default {@link DEFAULT_PREFIX}; any non-empty string without spaces. */
export function resolvePrefix(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || prefix === '' || /\s/.test(prefix)) {
    throw new IdstitchOptionsError(
      'prefix',
      `must be a non-empty string without spaces, got ${JSON.stringify(prefix)}`,
      "Use one prefix per app sharing the Redis, e.g. prefix: 'shop:'.",
    );
  }
  return prefix;
}

export function nonEmptyName(value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new IdstitchOptionsError(option, 'must be a non-empty string', `Leave it out for '${fallback}'.`);
  }
  return value;
}

export function optionalFunction<T>(value: T | undefined, option: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new IdstitchOptionsError(option, 'must be a function', 'Pass (error) => logger.warn(error).');
  }
  return value;
}
