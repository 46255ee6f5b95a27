/**
 * From phase counts to instructions per unit. A case runs a warm-up phase, then `pairs` times a phase of n units
 * followed by a phase of 2n units. Each pair gives (count of its 2n phase − count of its n phase) / n: whatever a
 * phase costs regardless of its length (the boundary, the flush's round trip, the full GC at its end) cancels out.
 * The figure of a case is the median of its pairs, so that one pair disturbed by a late optimisation or a GC that
 * fell on the other side of a boundary does not move it.
 */
import { median } from '../lib/stats.js';

/**
 * A floor part costs 10–50k instructions, a request about a million: its phases are 10 times longer, so that the
 * jitter of what a phase costs regardless of its length (a few million instructions: the full GC, the boundary)
 * weighs on the floor's figures no more than on a request's.
 */
export const FLOOR_SCALE = 10;

/** Units in the n phase of a case: n requests, or n × {@link FLOOR_SCALE} units of a floor part. */
export function unitsPerPhase(kind: string, n: number): number {
  return kind === 'floor' ? n * FLOOR_SCALE : n;
}

/** How many phases a case's dumps hold: the warm-up, then two per pair. */
export function phasesPerCase(pairs: number): number {
  return 1 + 2 * pairs;
}

/**
 * Instructions per unit of each pair, from one case's phase counts in order (warm-up first).
 * Throws when the number of phases does not match `pairs`, or n is not a positive integer.
 */
export function pairCounts(phases: readonly number[], n: number, pairs: number): number[] {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`n must be a positive integer, not ${n}`);
  if (phases.length !== phasesPerCase(pairs)) {
    throw new RangeError(`${phases.length} phases for ${pairs} pairs: expected ${phasesPerCase(pairs)}`);
  }
  const counts: number[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const single = phases[1 + 2 * pair] as number;
    const double = phases[2 + 2 * pair] as number;
    counts.push((double - single) / n);
  }
  return counts;
}

/** The case's figure: the median of its pairs. */
export function perUnit(phases: readonly number[], n: number, pairs: number): number {
  return median(pairCounts(phases, n, pairs));
}

/** Splits a process's phases (several cases one after the other) into each case's. */
export function splitCases<T>(phases: readonly T[], cases: number, pairs: number): T[][] {
  const each = phasesPerCase(pairs);
  if (phases.length !== cases * each) {
    throw new RangeError(
      `${phases.length} phases for ${cases} cases of ${pairs} pairs: expected ${cases * each}`,
    );
  }
  return Array.from({ length: cases }, (_, index) => phases.slice(index * each, (index + 1) * each));
}
