import { resolve } from 'node:path';
import { readSpoolDirectory } from '@idstitch/core';
import type { IdMergeMode } from '../resolver.js';
import { RecordsBuilder } from './records.js';
import { type RecordSource, watchPath } from './source.js';

export interface SpoolSourceOptions {
  /** The ID Merge API to resolve with. Default: guessed from the messages. */
  mode?: IdMergeMode;
  /** How often to look at the directory when it cannot be watched, in ms. Default 500. */
  pollIntervalMs?: number;
}

/** Said on every snapshot of a spool: what it can and cannot show. */
export const SPOOL_NOTICE =
  'The spool holds only what is not delivered yet: records Mixpanel accepted are settled and deleted, so ' +
  'they are not shown; messages still in the sink’s memory queue are not on disk and not shown either.';

/**
 * Reads a `MixpanelSink` delivery spool directory (its `spool.dir` option) as it is now, read-only: every
 * record not yet delivered, marked pending. Never takes the spool's lock, so it runs beside the app that
 * owns it; a record being written, a damaged record or a segment deleted meanwhile is skipped, and the
 * damage is listed in the page's notices.
 */
export function spoolSource(dir: string, options: SpoolSourceOptions = {}): RecordSource {
  const root = resolve(dir);
  const label = `spool ${root}`;
  return {
    label,
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    async read() {
      const view = await readSpoolDirectory(root);
      const builder = new RecordsBuilder(label);
      for (const record of view.records) {
        const where = `segment ${record.segment} #${record.index}`;
        builder.add(
          record.json,
          `${label}, ${where}${record.sending ? ' (being sent)' : ''}`,
          `${label}, ${where}`,
        );
      }
      builder.notice(SPOOL_NOTICE);
      for (const damage of view.damage) builder.notice(`Spool: ${damage.message}.`);
      return builder.records;
    },
    watch: (onChange) => watchPath(root, onChange, options.pollIntervalMs ?? 500, true),
  };
}
