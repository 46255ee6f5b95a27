/** Median and spread of one figure over several rounds. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, as a fraction; 0 with one round. */
  spread: number;
  rounds: number;
  values: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const finite = values.filter((value) => Number.isFinite(value));
  const m = median(finite);
  const min = finite.length ? Math.min(...finite) : Number.NaN;
  const max = finite.length ? Math.max(...finite) : Number.NaN;
  return {
    median: m,
    min,
    max,
    spread: finite.length > 1 && m !== 0 ? (max - min) / Math.abs(m) : 0,
    rounds: finite.length,
    values: [...values],
  };
}

/** A number with `digits` significant decimals, thousands separated by a thin space for tables. */
export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  const fixed = value.toFixed(digits);
  const [whole, fraction] = fixed.split('.');
  const grouped = (whole as string).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

/** `median (min–max)` for a table cell. */
export function cell(summary: Summary, digits = 0): string {
  if (summary.rounds <= 1) return fmt(summary.median, digits);
  return `${fmt(summary.median, digits)} (${fmt(summary.min, digits)}–${fmt(summary.max, digits)})`;
}

/** `±x %` spread for a table cell. */
export function spreadCell(summary: Summary): string {
  if (summary.rounds <= 1) return '1 round';
  return `±${fmt((summary.spread * 100) / 2, 1)} %`;
}

export function ratio(value: number, baseline: number): number {
  return baseline === 0 || !Number.isFinite(baseline) ? Number.NaN : value / baseline;
}
