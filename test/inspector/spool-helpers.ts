/** Writes spools with core's own DiskSpool, for the inspector's spool tests. */
import type { IdstitchError } from '@idstitch/core';
import { openDiskSpool } from '../../packages/core/src/sinks/spool/disk-spool.js';
import type { Spool } from '../../packages/core/src/sinks/spool/types.js';

const DEVICE = '9b2f3c1e-5d4a-4b6c-8e7f-0a1b2c3d4e5f';

/** An `/import` event as MixpanelSink serialises it into the spool. */
export const spooledEvent = (name: string, i: number, userId?: string): string =>
  JSON.stringify({
    event: name,
    properties: {
      token: 'project-token',
      distinct_id: userId ?? `$device:${DEVICE}`,
      $device_id: DEVICE,
      ...(userId === undefined ? {} : { $user_id: userId }),
      time: 1_700_000_000_000 + i * 1000,
      $insert_id: `insert-${i}`,
    },
  });

/** Opens a real DiskSpool (it takes the directory's LOCK) and closes it after the test; reports go to `errors`. */
export async function openSpool(
  dir: string,
  cleanups: (() => Promise<void> | void)[],
  segmentBytes = 64 * 1024,
  errors: IdstitchError[] = [],
): Promise<Spool> {
  const spool = await openDiskSpool(
    { dir, fsync: 'per-batch', fsyncIntervalMs: 1000, maxBytes: 64 * 1024 * 1024, segmentBytes },
    {
      report: (error) => errors.push(error),
      synced: () => {},
      written: () => {},
      lost: () => {},
      damaged: () => {},
    },
  );
  cleanups.push(() => spool.close());
  return spool;
}
