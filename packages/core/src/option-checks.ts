import { IdstitchOptionsError } from './errors.js';

/** Throws the start-up error every option check uses: the option, what is wrong, and the fix. */
export function fail(option: string, problem: string, fix: string): never {
  throw new IdstitchOptionsError(option, problem, fix);
}

export function optionalFunction(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'function')
    fail(option, `must be a function, got ${typeof value}`, 'Pass a function or leave it out.');
}

export function optionalBoolean(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'boolean')
    fail(option, `must be true or false, got ${typeof value}`, 'Pass a boolean or leave it out.');
}

/** Edit distance of two short strings (insertions, deletions, substitutions), case-insensitive. */
function distance(a: string, b: string): number {
  const left = a.toLowerCase();
  const right = b.toLowerCase();
  let previous = Array.from({ length: right.length + 1 }, (_, i) => i);
  for (let i = 1; i <= left.length; i++) {
    const current = [i];
    for (let j = 1; j <= right.length; j++) {
      const cost = left[i - 1] === right[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
    }
    previous = current;
  }
  return previous[right.length] as number;
}

/** The known key `key` was most likely meant to be, if any is close enough to suggest. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (bestDistance <= Math.max(2, Math.floor(key.length / 4))) return best;
  // A long shared start (`geolocation` for `geolocate`) is a typo too.
  const lower = key.toLowerCase();
  return known.find((candidate) => {
    const other = candidate.toLowerCase();
    let shared = 0;
    while (shared < lower.length && lower[shared] === other[shared]) shared++;
    return shared >= 4 && shared >= 0.7 * Math.min(lower.length, other.length);
  });
}

/**
 * Refuses keys an options object does not define (`cookies:` for `cookie:`), which would otherwise be ignored
 * silently and leave a default in force the app meant to change. `path` is where the object sits (`''` for the
 * root), `known` every key it may have.
 */
export function rejectUnknownKeys(value: object, path: string, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const option = path === '' ? key : `${path}.${key}`;
    const suggestion = closestKey(key, known);
    fail(
      option,
      'is not an idstitch option',
      suggestion === undefined
        ? `Remove it; the options here are ${known.map((name) => `\`${name}\``).join(', ')}.`
        : `Did you mean \`${path === '' ? suggestion : `${path}.${suggestion}`}\`?`,
    );
  }
}
