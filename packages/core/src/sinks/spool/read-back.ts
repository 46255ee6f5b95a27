/**
 * Reading spilled records back from the disk spool's segments, oldest first. Node-only; used by
 * `disk-spool.ts`, which owns the cursor and the backlog this reads from and updates.
 */
import type { IdstitchError } from '../../errors.js';
import { parseRecords } from './format.js';
import { reportReadBackDamage, reportTruncated, reportUnreadable } from './recover.js';
import { errorCode, readAt, type Segment } from './segment.js';
import type { DamagedRecord, SpooledRecord } from './types.js';

/** Bytes read back at a time (more when one record is larger). */
const READ_CHUNK = 256 * 1024;

/** Where reading back resumes. */
export interface ReadCursor {
  segment: Segment;
  offset: number;
}

/** The spool's state that reading back reads and moves on. */
export interface ReadBackState {
  /** Spilled records not read back yet; each record read takes one off. */
  backlog: number;
  /** Where reading back resumes while `backlog > 0`. */
  cursor: ReadCursor | undefined;
  readonly segments: readonly Segment[];
  /** See `idSpan` in `segment.ts`. */
  readonly idSpan: number;
  report(error: IdstitchError): void;
  /** Disk-only records the cursor went past without reading: they are out of the backlog already. */
  damaged(records: DamagedRecord[]): void;
  /** The cursor left a sealed segment: it may be deleted once settled. */
  leftSegment(): void;
}

/**
 * Reads back disk-only records, within the limits. Reads past what it cannot read (damaged bytes, a
 * segment cut short on disk, one that can no longer be opened), reporting each once: waiting behind it
 * would hold every later record until the process ends.
 */
export async function readBack(
  state: ReadBackState,
  maxRecords: number,
  maxBytes: number,
): Promise<SpooledRecord[]> {
  const out: SpooledRecord[] = [];
  let bytes = 0;
  while (state.backlog > 0 && out.length < maxRecords && state.cursor) {
    const cursor = state.cursor;
    const { segment } = cursor;
    if (cursor.offset >= segment.written) {
      // Still being written: the write's completion calls `written()` and the reader comes back.
      if (segment.written < segment.size || !segment.sealed) break;
      const next = state.segments[state.segments.indexOf(segment) + 1];
      if (!next) break;
      state.cursor = { segment: next, offset: 0 };
      // After moving the cursor: the sink, told, may append (and, the backlog now empty, set the cursor).
      passed(state, segment, Number.POSITIVE_INFINITY, []);
      state.leftSegment();
      continue;
    }
    // What is written now: the records below `writtenRecords` are in the bytes below `written`.
    const { written, writtenRecords } = segment;
    const length = written - cursor.offset;
    // Read about what the limits can take, not the whole rest of the segment: a small memory budget
    // would otherwise re-read a large backlog for every few records it takes.
    let chunk = Math.min(length, Math.max(READ_CHUNK, 2 * maxBytes));
    let parsed: ReturnType<typeof parseRecords>;
    /** The file ends before what was written to it: cut short on disk. */
    let short = false;
    try {
      for (;;) {
        const buffer = await readAt(segment.path, cursor.offset, chunk);
        short = buffer.length < chunk;
        // Not \`complete\` when cut short: the cut record is reported with the missing end, below.
        parsed = parseRecords(buffer, 0, chunk === length && !short);
        // One record larger than the chunk: read it whole.
        if (parsed.records.length > 0 || parsed.damage.length > 0 || chunk === length || short) break;
        chunk = length;
      }
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ESPOOLUNSAFE') {
        // Deleted under the spool (a /tmp cleaner), or not made by this user: it can never be read. Read
        // past it, or every later record would wait behind it until the process ends.
        reportUnreadable(segment, code, (report) => state.report(report));
        segment.sealed = true;
        cursor.offset = segment.written;
        passed(state, segment, segment.writtenRecords, []);
        continue;
      }
      // What was read before is out of the backlog already: hand it over, the next read meets the error.
      if (out.length > 0) return out;
      throw error;
    }
    let consumed = parsed.next;
    let full = false;
    /** Records held that lie before one read: the bytes holding them were damaged. */
    const skipped: DamagedRecord[] = [];
    for (const record of parsed.records) {
      // Not held: settled by a previous process (its ledger says so).
      if (!segment.unread.has(record.index)) continue;
      const size = Buffer.byteLength(record.json, 'utf8');
      if (out.length >= maxRecords || (out.length > 0 && bytes + size > maxBytes)) {
        // The limits are reached: the next read starts at this record. (Going round the outer loop
        // again here would read the same bytes for ever: that was a stall.)
        consumed = record.start;
        full = true;
        break;
      }
      out.push({
        id: segment.no * state.idSpan + record.index,
        seq: segment.own ? record.seq : 0,
        endpoint: record.endpoint,
        json: record.json,
        bytes: size,
        insertId: record.insertId,
        wasSending: segment.sending?.has(record.index) ?? false,
      });
      segment.unread.takeBefore(record.index, skipped);
      segment.unread.delete(record.index);
      bytes += size;
      state.backlog -= 1;
    }
    reportReadBackDamage(segment, cursor.offset, parsed.damage, consumed, (error) => state.report(error));
    cursor.offset += consumed;
    // Read up to what was written: every record written by then is read or lost.
    let limit = cursor.offset >= written ? writtenRecords : 0;
    if (short && !full) {
      // Nothing more can be read from this segment: going on would re-read its end for ever (a stall).
      reportTruncated(segment, cursor.offset, (error) => state.report(error));
      cursor.offset = segment.written;
      limit = segment.writtenRecords;
    }
    passed(state, segment, limit, skipped);
    if (full || (out.length > 0 && (out.length >= maxRecords || bytes >= maxBytes))) break;
  }
  return out;
}

/**
 * The cursor went past the disk-only records of `segment` in `damaged` and those with an index below `limit`
 * without reading them (the bytes holding them were damaged, cut off or unreadable): they never will be. They
 * leave the backlog, count as settled (the segment can be deleted once the rest is), and the sink is told, so
 * that they are counted as dropped rather than held as spooled until the process ends (`drain()` waited for
 * them). Records are written in index order, so those before a record read, or before the end of what was
 * written, are the ones with a lower index.
 */
function passed(state: ReadBackState, segment: Segment, limit: number, damaged: DamagedRecord[]): void {
  segment.unread.takeBefore(limit, damaged);
  if (damaged.length === 0) return;
  state.backlog -= damaged.length;
  segment.settled += damaged.length;
  state.damaged(damaged);
}
