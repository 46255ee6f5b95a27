/**
 * Taking stock of a spool directory at open: which segments a previous process left, what in them is
 * still unsettled, and what is damaged (reported, skipped). Node-only.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IdstitchError } from '../../errors.js';
import { readOwned } from './directory.js';
import { type Damage, parseLedger, parseRecords, RECORD_OVERHEAD } from './format.js';
import { newSegment, type Segment } from './segment.js';

export interface Recovered {
  /** Segments holding unsettled records, oldest first. */
  segments: Segment[];
  /** Unsettled records in them. */
  unsettled: number;
  /** Highest segment number seen (new segments are numbered after it). */
  lastNo: number;
  bytes: number;
  /** Highest record index in them (sizes the spool IDs). */
  maxIndex: number;
}

/** Reads every segment a previous process left: counts what is unsettled, reports damage, removes the settled. */
export async function recoverDirectory(
  dir: string,
  report: (error: IdstitchError) => void,
): Promise<Recovered> {
  const names = await readdir(dir);
  const numbers = names
    .filter((name) => /^\d{10}\.seg$/.test(name))
    .map((name) => Number(name.slice(0, 10)))
    .sort((a, b) => a - b);
  const out: Recovered = { segments: [], unsettled: 0, lastNo: 0, bytes: 0, maxIndex: 0 };
  for (const no of numbers) {
    out.lastNo = Math.max(out.lastNo, no);
    const segment = newSegment(dir, no, false);
    const buffer = await readOwned(segment.path);
    // Missing, or not made by this user alone (its acks are not trusted): nothing settled.
    const ledger = await readOwned(segment.ledgerPath).catch(() => Buffer.alloc(0));
    const { acked, sending, damaged } = parseLedger(ledger);
    const { records, damage } = parseRecords(buffer, 0, true);
    for (const hurt of damage) {
      report(
        new IdstitchError(
          hurt.tail ? 'spool_torn_tail' : 'spool_corrupt',
          hurt.tail
            ? `spool segment ${segment.path} ends in ${hurt.bytes} bytes of an incomplete record (a crash mid-write); ` +
                'they were skipped, every whole record before them is delivered'
            : `spool segment ${segment.path} has ${hurt.bytes} damaged bytes at offset ${hurt.offset} (checksum ` +
                'mismatch); the records they held are lost, the rest are delivered',
          { details: { path: segment.path, offset: hurt.offset, bytes: hurt.bytes } },
        ),
      );
    }
    if (damaged) {
      report(
        new IdstitchError(
          'spool_torn_tail',
          `spool ledger ${segment.ledgerPath} ends in a damaged entry; records it may have settled are sent ` +
            'again (events are deduplicated by $insert_id)',
          { details: { path: segment.ledgerPath } },
        ),
      );
    }
    // The unsettled records, in the compact index (sequence number 0: not this process's). The ledger's
    // settled set is not kept: a record read back that the index does not hold is skipped.
    // Records are written in index order, each at least RECORD_OVERHEAD bytes (a failed write truncates a
    // suffix): record i ends past (i + 1) x RECORD_OVERHEAD. An index beyond that, valid checksum or not, was
    // not written by a spool; taken at its word it would size the index's arrays (gigabytes for 2^32).
    const plausible = Math.floor(buffer.length / RECORD_OVERHEAD);
    let maxIndex = -1;
    for (const record of records) {
      if (record.index >= plausible) {
        reportImplausible(segment, record.start, record.index, report);
        continue;
      }
      maxIndex = Math.max(maxIndex, record.index);
      if (!acked.has(record.index)) segment.unread.add(record.index, 0, record.endpoint);
    }
    // Distinct indexes: two records under one index (never written by a spool) are read back once.
    const unsettled = segment.unread.count;
    if (unsettled === 0) {
      await removeSegment(segment);
      continue;
    }
    segment.size = buffer.length;
    segment.written = buffer.length;
    segment.writtenRecords = maxIndex + 1;
    segment.records = records.length;
    segment.settled = records.length - unsettled;
    segment.knownDamage = new Set(damage.map((hurt) => hurt.offset));
    segment.sending = sending;
    out.segments.push(segment);
    out.bytes += buffer.length;
    out.unsettled += unsettled;
    out.maxIndex = Math.max(out.maxIndex, maxIndex);
  }
  // Ledgers whose segment is gone.
  for (const name of names) {
    if (/^\d{10}\.ack$/.test(name) && !numbers.includes(Number(name.slice(0, 10)))) {
      await rm(join(dir, name), { force: true });
    }
  }
  return out;
}

export async function removeSegment(segment: Segment): Promise<void> {
  await rm(segment.path, { force: true }).catch(() => {});
  await rm(segment.ledgerPath, { force: true }).catch(() => {});
}

/**
 * Damage found while reading a segment back (bytes changed on disk after they were written): reported, not
 * skipped in silence, and once: not what lies past where the read stops (`consumed`, read again next time),
 * nor what was reported when the spool was opened. `base` is the file offset the parsed chunk starts at.
 */
export function reportReadBackDamage(
  segment: Segment,
  base: number,
  damage: readonly Damage[],
  consumed: number,
  report: (error: IdstitchError) => void,
): void {
  for (const hurt of damage) {
    const offset = base + hurt.offset;
    if (hurt.offset >= consumed || segment.knownDamage?.has(offset)) continue;
    report(
      new IdstitchError(
        'spool_corrupt',
        `spool segment ${segment.path} has ${hurt.bytes} damaged bytes at offset ${offset}, found while reading ` +
          'it back (checksum mismatch); the records they held cannot be delivered, the rest are',
        { details: { path: segment.path, offset, bytes: hurt.bytes } },
      ),
    );
  }
}

/** A record whose index its segment cannot hold: skipped (read back, it is not held, so not sent). */
function reportImplausible(
  segment: Segment,
  offset: number,
  index: number,
  report: (error: IdstitchError) => void,
): void {
  report(
    new IdstitchError(
      'spool_corrupt',
      `spool segment ${segment.path} has a record at offset ${offset} numbered ${index}, more than the segment ` +
        'can hold (not written by a spool); it was skipped, the rest are delivered',
      { details: { path: segment.path, offset, index } },
    ),
  );
}

/** A segment found shorter than what was written to it (truncated by hand, or a damaged file system). */
export function reportTruncated(
  segment: Segment,
  offset: number,
  report: (error: IdstitchError) => void,
): void {
  const bytes = segment.written - offset;
  if (bytes <= 0) return;
  report(
    new IdstitchError(
      'spool_corrupt',
      `spool segment ${segment.path} ends at offset ${offset}, ${bytes} bytes short of what was written to it ` +
        '(truncated); the records they held cannot be delivered, the rest are',
      { details: { path: segment.path, offset, bytes } },
    ),
  );
}

/** A segment that can no longer be opened: deleted under the spool, or not made by this user alone. */
export function reportUnreadable(
  segment: Segment,
  code: string,
  report: (error: IdstitchError) => void,
): void {
  report(
    new IdstitchError(
      'spool_corrupt',
      `spool segment ${segment.path} cannot be read back (${code === 'ENOENT' ? 'it was deleted' : 'it is not this user’s own file'}); ` +
        'the records it held are not delivered, the later ones are',
      { details: { path: segment.path, code } },
    ),
  );
}
