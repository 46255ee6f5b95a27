/**
 * One segment of the disk spool: its files, what is known of them, and the write helper. Node-only.
 */
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openOwned, READ_FLAGS } from './directory.js';
import { RECORD_OVERHEAD } from './format.js';
import { UnreadIndex } from './unread-index.js';

/**
 * A spool ID is `segment number × span + index of the record in its segment`, an exact integer while it is
 * under 2^53. The span is the most records a segment can hold (every record takes at least
 * `RECORD_OVERHEAD` bytes), or more if a previous process's segment holds more, not a fixed 2^32: with that,
 * IDs stopped being exact past segment 2^21, which a long-lived process reaches (8 GiB of 4 KiB segments),
 * and acknowledgements settled the wrong records.
 */
export function idSpan(segmentBytes: number, maxRecoveredIndex: number): number {
  return Math.max(Math.floor(segmentBytes / RECORD_OVERHEAD) + 2, maxRecoveredIndex + 1);
}

export interface Segment {
  readonly no: number;
  readonly path: string;
  readonly ledgerPath: string;
  /** Created by this process (its records carry this process's sequence numbers). */
  readonly own: boolean;
  file: FileHandle | undefined;
  ledger: FileHandle | undefined;
  /** Bytes appended, pending writes included. */
  size: number;
  /** Bytes known to be whole records on disk. */
  written: number;
  /** The records with an index below this are the ones in those `written` bytes (they are written in index order). */
  writtenRecords: number;
  records: number;
  settled: number;
  nextIndex: number;
  /** No more appends. */
  sealed: boolean;
  /** Of a previous process's segment: offsets of the damage found (and reported) at open. */
  knownDamage: Set<number> | undefined;
  /** Of a previous process's segment: being-sent indexes from its ledger (its settled ones are not unread). */
  sending: Set<number> | undefined;
  pendingLedger: Buffer[];
  /** The pending ledger entries include a being-sent mark: fsync the ledger whatever the policy. */
  ledgerMustSync: boolean;
  /** Resolvers waiting for this segment's pending ledger entries. */
  ledgerWaiters: (() => void)[];
  /**
   * Records held on disk only and not read back yet: those the read-back cursor goes past without reading
   * (damaged, cut short, unreadable) are counted as dropped instead of spooled for ever.
   */
  unread: UnreadIndex;
}

export function segmentName(no: number): string {
  return String(no).padStart(10, '0');
}

export function newSegment(dir: string, no: number, own: boolean): Segment {
  const name = segmentName(no);
  return {
    no,
    path: join(dir, `${name}.seg`),
    ledgerPath: join(dir, `${name}.ack`),
    own,
    file: undefined,
    ledger: undefined,
    size: 0,
    written: 0,
    writtenRecords: 0,
    records: 0,
    settled: 0,
    nextIndex: 0,
    sealed: !own,
    knownDamage: undefined,
    sending: undefined,
    pendingLedger: [],
    ledgerMustSync: false,
    ledgerWaiters: [],
    unread: new UnreadIndex(),
  };
}

/** Writes all of `buffer`; a write that makes no progress is a failure (ENOSPC and the like). */
export async function writeAll(handle: FileHandle, buffer: Buffer): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
    if (bytesWritten === 0) {
      throw Object.assign(new Error('no space left on device (short write)'), { code: 'ENOSPC' });
    }
    done += bytesWritten;
  }
}

export function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? 'unknown';
}

/**
 * Reads `length` bytes at `offset` (fewer at the end of the file) with a handle of its own: the writer's
 * may be closed by the I/O loop when its segment is collected.
 */
export async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  const handle = await openOwned(path, READ_FLAGS);
  try {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buffer : buffer.subarray(0, done);
  } finally {
    await handle.close();
  }
}
