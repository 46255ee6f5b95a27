/**
 * The disk spool of issue 11 (`MixpanelSink`'s `spool` option), for the delivery and stall scenarios. While the
 * option is not available in the idstitch being measured, the spool variants are skipped with that reason.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MixpanelSink, type MixpanelSinkOptions } from '@idstitch/core';

export const SPOOL_UNAVAILABLE = 'spool option not available';

export type SpoolingSink = { sink: MixpanelSink; dir: string } | { skipped: string };

/** What the spool's counters say, when the sink reports a spool. */
export interface SpoolFigures {
  /** Messages held on disk only (not in memory), `stats().spooled`. */
  records: number;
  /** Records the spool appended (with a spool every accepted message is journaled). */
  appended: number;
  /** Bytes of segment files the spool reports. */
  bytes: number;
}

/** Reads the spool's counters from `stats()`; undefined when the sink reports no open spool. */
export function spoolFigures(stats: object): SpoolFigures | undefined {
  const s = stats as { spool?: { bytes?: unknown; appended?: unknown }; spooled?: unknown };
  const num = (value: unknown) => (typeof value === 'number' ? value : Number.NaN);
  if (s.spool === null || typeof s.spool !== 'object') return undefined;
  return { records: num(s.spooled), appended: num(s.spool.appended), bytes: num(s.spool.bytes) };
}

/**
 * A MixpanelSink with a disk spool in a fresh temporary directory, once the spool is open (`ready()`), or why
 * there cannot be one.
 */
export async function spoolingSink(options: MixpanelSinkOptions): Promise<SpoolingSink> {
  const dir = mkdtempSync(join(tmpdir(), 'idstitch-bench-spool-'));
  let sink: MixpanelSink;
  try {
    sink = new MixpanelSink({ ...options, spool: { dir } } as MixpanelSinkOptions);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return { skipped: `${SPOOL_UNAVAILABLE} (${error instanceof Error ? error.message : String(error)})` };
  }
  await (sink as { ready?: () => Promise<void> }).ready?.();
  if (!spoolFigures(sink.stats())) {
    // An idstitch without the option ignores it (or its spool failed to open, and onError said why).
    await sink.close(0);
    rmSync(dir, { recursive: true, force: true });
    return { skipped: SPOOL_UNAVAILABLE };
  }
  return { sink, dir };
}

/** Bytes of the files under `dir` (the spool's segments), 0 when it is gone. */
export function directoryBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return 0;
  }
  for (const entry of entries) {
    try {
      const stat = statSync(join(dir, entry));
      if (stat.isFile()) total += stat.size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}
