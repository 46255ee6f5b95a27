import { describe, expect, it } from 'vitest';
import {
  FLOOR_SCALE,
  pairCounts,
  perUnit,
  phasesPerCase,
  splitCases,
  unitsPerPhase,
} from '../src/instructions/pairs.js';
import { median } from '../src/lib/stats.js';

describe('n/2n pairs', () => {
  // warm-up, then (n, 2n) × 3 with n = 100: fixed cost per phase 50 000, 1 000 per unit, one pair disturbed.
  const phases = [9_000_000, 150_000, 250_000, 150_000, 250_000, 160_000, 250_000];

  it('gives (2n phase − n phase) / n per pair: the fixed cost of a phase cancels', () => {
    expect(phasesPerCase(3)).toBe(7);
    expect(pairCounts(phases, 100, 3)).toEqual([1000, 1000, 900]);
  });

  it('takes the median of the pairs, so one disturbed pair does not move the figure', () => {
    expect(perUnit(phases, 100, 3)).toBe(1000);
    expect(perUnit([0, 100, 300, 100, 310], 1, 2)).toBe(205);
  });

  it('refuses a phase count that does not match the pairs, and a non-positive n', () => {
    expect(() => pairCounts(phases, 100, 2)).toThrow(/7 phases for 2 pairs: expected 5/);
    expect(() => pairCounts(phases, 0, 3)).toThrow(RangeError);
  });

  it("splits one process's phases into its cases, in order", () => {
    const two = [...phases, 1, 2, 4, 2, 4, 2, 4];
    expect(splitCases(two, 2, 3)).toEqual([phases, [1, 2, 4, 2, 4, 2, 4]]);
    expect(() => splitCases(two, 3, 3)).toThrow(/14 phases for 3 cases/);
  });

  it('gives the floor parts phases ten times longer than requests', () => {
    expect(unitsPerPhase('app', 200)).toBe(200);
    expect(unitsPerPhase('client', 200)).toBe(200);
    expect(unitsPerPhase('floor', 200)).toBe(200 * FLOOR_SCALE);
    expect(FLOOR_SCALE).toBe(10);
  });

  it('median of an even count is the mean of the middle two', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
