/**
 * A durable spool on local disk: append-only segment files of checksummed records, and beside each a
 * ledger of the records settled (and of profile/group updates about to be sent). Node-only; loaded by
 * `MixpanelSink` with a dynamic import when a spool is configured.
 *
 * Every file operation (write, fsync, truncate, close, delete) runs in one serial loop ({@link DiskSpool}
 * `#run`): a handle is never closed while another operation uses it, and two writes never interleave.
 */
import { resolve } from 'node:path';
import { IdstitchError } from '../../errors.js';
import type { MixpanelEndpoint } from '../mixpanel/endpoint.js';
import { FILE_MODE, LEDGER_FLAGS, openOwned, prepareDirectory, SEGMENT_FLAGS } from './directory.js';
import {
  ACK_MAGIC,
  encodeLedger,
  NOT_SENT_MAGIC,
  recordBytes,
  SENDING_MAGIC,
  writeRecord,
} from './format.js';
import { IndexBudget, indexBytes } from './index-budget.js';
import { LOCK_STALE_MS, lockDirectory } from './lock.js';
import { type ReadBackState, type ReadCursor, readBack } from './read-back.js';
import { recoverDirectory, removeSegment } from './recover.js';
import { errorCode, idSpan, newSegment, type Segment, writeAll } from './segment.js';
import type {
  LostRecord,
  ResolvedSpoolOptions,
  Spool,
  SpooledRecord,
  SpoolHooks,
  SpoolStats,
} from './types.js';

/** After a failed write (disk full, read-only), how long before trying a fresh segment. */
const RETRY_AFTER_MS = 10_000;

interface PendingRecord {
  segment: Segment;
  index: number;
  /** Bytes of the record (see `recordBytes`): it is encoded only when its batch is written. */
  bytes: number;
  seq: number;
  spilled: boolean;
  endpoint: MixpanelEndpoint;
  json: string;
  insertId: string | undefined;
}

/** Opens (creating if needed) and locks a spool directory, and takes stock of what is left in it. */
export async function openDiskSpool(options: ResolvedSpoolOptions, hooks: SpoolHooks): Promise<Spool> {
  // The real path from here on: a symlink in the configured one could be re-pointed after the checks.
  const dir = await prepareDirectory(resolve(options.dir));
  let spool: DiskSpool | undefined;
  const unlock = await lockDirectory(dir, () => spool?.lockLost());
  try {
    spool = new DiskSpool(dir, options, hooks, unlock);
    await spool.recover();
    return spool;
  } catch (error) {
    await unlock().catch(() => {});
    throw error;
  }
}

class DiskSpool implements Spool {
  recovered = 0;
  backlog = 0;
  readonly #dir: string;
  readonly #options: ResolvedSpoolOptions;
  readonly #hooks: SpoolHooks;
  readonly #unlock: () => Promise<void>;
  #segments: Segment[] = [];
  #active: Segment | undefined;
  #lastNo = 0;
  /** See {@link idSpan}. */
  #idSpan: number;
  #bytes = 0;
  /** `lost`: another process took the directory over (see {@link lockLost}); for good. */
  #state: 'ok' | 'full' | 'failed' | 'lost' = 'ok';
  /** The memory budget of the segments' indexes of disk-only records. */
  readonly #indexBudget: IndexBudget;
  #failedAt = 0;
  /** Where reading back resumes while `backlog > 0`. */
  #cursor: ReadCursor | undefined;
  #pending: PendingRecord[] = [];
  /**
   * Bytes of the records appended but not yet handed to the file (pending plus the batch being written):
   * held in memory, so bounded by {@link writeBufferBytes}.
   */
  #unwrittenBytes = 0;
  /** Set while appends are refused because writing is that far behind; reported once per episode. */
  #behind = false;
  /** The serial I/O loop, while it runs. */
  #loop: Promise<void> | undefined;
  #syncWanted = false;
  #collectWanted = false;
  /** Reads in progress: no segment is collected meanwhile (a read may hold its handle). */
  #reads = 0;
  readonly #dirty = new Set<Segment>();
  #appended = 0;
  #written = 0;
  #synced = 0;
  #syncs = 0;
  #writtenSeq = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** `close()` is done: the files are closed and the directory unlocked; nothing is written any more. */
  #finished = false;

  /** What {@link readBack} reads and moves on: this spool's own fields. */
  readonly #readState: ReadBackState;

  constructor(dir: string, options: ResolvedSpoolOptions, hooks: SpoolHooks, unlock: () => Promise<void>) {
    this.#dir = dir;
    this.#options = options;
    this.#hooks = hooks;
    this.#unlock = unlock;
    this.#idSpan = idSpan(options.segmentBytes, 0);
    this.#indexBudget = new IndexBudget(options.maxBytes, dir, (error) => hooks.report(error));
    const spool = this;
    this.#readState = {
      get backlog() {
        return spool.backlog;
      },
      set backlog(value) {
        spool.backlog = value;
      },
      get cursor() {
        return spool.#cursor;
      },
      set cursor(value) {
        spool.#cursor = value;
      },
      get segments() {
        return spool.#segments;
      },
      get idSpan() {
        return spool.#idSpan;
      },
      report: (error) => hooks.report(error),
      damaged: (records) => hooks.damaged(records),
      leftSegment: () => {
        spool.#collectWanted = true;
        spool.#kick();
      },
    };
    if (options.fsync === 'interval') {
      this.#timer = setInterval(() => {
        if (this.#dirty.size === 0) return;
        this.#syncWanted = true;
        this.#kick();
      }, options.fsyncIntervalMs);
      this.#timer.unref();
    }
  }

  async recover(): Promise<void> {
    const found = await recoverDirectory(this.#dir, (error) => this.#hooks.report(error));
    this.#segments = found.segments;
    this.#lastNo = found.lastNo;
    this.#bytes = found.bytes;
    this.#idSpan = idSpan(this.#options.segmentBytes, found.maxIndex);
    this.recovered = found.unsettled;
    this.backlog = found.unsettled;
    const first = this.#segments[0];
    if (first) this.#cursor = { segment: first, offset: 0 };
  }

  append(
    seq: number,
    endpoint: MixpanelEndpoint,
    json: string,
    spilled: boolean,
    insertId?: string,
  ): number | undefined {
    if (this.#closed || this.#state === 'lost') return undefined;
    if (this.#state === 'failed') {
      if (Date.now() - this.#failedAt < RETRY_AFTER_MS) return undefined;
      this.#state = 'ok';
    }
    let segment = this.#active;
    const jsonBytes = Buffer.byteLength(json, 'utf8');
    const size = recordBytes(jsonBytes, insertId);
    if (this.#unwrittenBytes + size > writeBufferBytes(this.#options)) {
      // Tracking outruns the disk: records waiting for their write are memory like the queue, so they
      // get a byte budget too; past it the message takes the memory policy (held or dropped, counted).
      if (!this.#behind) {
        this.#behind = true;
        this.#hooks.report(
          new IdstitchError(
            'spool_full',
            `spool ${this.#dir} is ${this.#unwrittenBytes} bytes behind in writing (its buffer is ` +
              `${writeBufferBytes(this.#options)} bytes); new messages are held in memory ` +
              '(and dropped by the memory policy) until the disk catches up',
            { details: { dir: this.#dir, unwrittenBytes: this.#unwrittenBytes } },
          ),
        );
      }
      return undefined;
    }
    if (this.#bytes + size > this.#options.maxBytes) {
      if (this.#state !== 'full') {
        this.#state = 'full';
        this.#hooks.report(
          new IdstitchError(
            'spool_full',
            `spool ${this.#dir} reached its budget of ${this.#options.maxBytes} bytes; new messages are held ` +
              'in memory (and dropped by the memory policy) until it has room',
            { details: { dir: this.#dir, maxBytes: this.#options.maxBytes } },
          ),
        );
      }
      return undefined;
    }
    if (this.#state === 'full') {
      this.#state = 'ok';
      this.#hooks.report(
        new IdstitchError('spool_full', `spool ${this.#dir} has room again`, { details: { dir: this.#dir } }),
      );
    }
    if (!segment || segment.sealed || segment.size + size > this.#options.segmentBytes) {
      if (segment) segment.sealed = true;
      this.#lastNo += 1;
      segment = newSegment(this.#dir, this.#lastNo, true);
      this.#segments.push(segment);
      this.#active = segment;
    }
    const index = segment.nextIndex;
    if (spilled && !this.#indexBudget.admits(this.#segments, segment.unread, index, seq)) return undefined;
    segment.nextIndex += 1;
    segment.records += 1;
    if (spilled) {
      if (this.backlog === 0) this.#cursor = { segment, offset: segment.size };
      this.backlog += 1;
      segment.unread.add(index, seq, endpoint);
    }
    segment.size += size;
    this.#bytes += size;
    this.#appended += 1;
    this.#unwrittenBytes += size;
    this.#pending.push({ segment, index, bytes: size, seq, spilled, endpoint, json, insertId });
    this.#kick();
    return segment.no * this.#idSpan + index;
  }

  /**
   * Our `LOCK` names another process now: it took the directory over while this one could not refresh
   * it. Nothing new is appended from here on (new segments of ours would collide with its segment
   * numbers, and their acks with its records); new messages take the memory policy.
   */
  lockLost(): void {
    if (this.#closed || this.#state === 'lost') return;
    this.#state = 'lost';
    this.#hooks.report(
      new IdstitchError(
        'spool_locked',
        `another process took over spool ${this.#dir} (this one had not refreshed its LOCK for ` +
          `${LOCK_STALE_MS / 1000} s: a blocked event loop, a paused machine or a clock jump); no new messages ` +
          'are written to it, they are held in memory under its budget. Give each process its own spool directory.',
        { details: { dir: this.#dir } },
      ),
    );
  }

  async read(maxRecords: number, maxBytes: number): Promise<SpooledRecord[]> {
    this.#reads += 1;
    try {
      return await readBack(this.#readState, maxRecords, maxBytes);
    } finally {
      this.#reads -= 1;
    }
  }

  ack(ids: readonly number[]): void {
    void this.#ledger(ACK_MAGIC, ids);
  }

  markSending(ids: readonly number[]): Promise<void> {
    return this.#ledger(SENDING_MAGIC, ids);
  }

  markNotSent(ids: readonly number[]): void {
    void this.#ledger(NOT_SENT_MAGIC, ids);
  }

  stats(): SpoolStats {
    return {
      dir: this.#dir,
      state: this.#state,
      fsync: this.#options.fsync,
      bytes: this.#bytes,
      segments: this.#segments.length,
      appended: this.#appended,
      written: this.#written,
      synced: this.#synced,
      syncs: this.#syncs,
      indexBytes: indexBytes(this.#segments),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#syncWanted = true;
    this.#kick();
    while (this.#loop) await this.#loop;
    for (const segment of this.#segments) segment.sealed = true;
    await this.#collect();
    for (const segment of this.#segments) {
      await segment.file?.close().catch(() => {});
      await segment.ledger?.close().catch(() => {});
      segment.file = undefined;
      segment.ledger = undefined;
    }
    this.#finished = true;
    await this.#unlock().catch(() => {});
  }

  // ---------------------------------------------------------------------------------------------

  #ledger(magic: number, ids: readonly number[]): Promise<void> {
    const bySegment = new Map<number, number[]>();
    for (const id of ids) {
      const no = Math.floor(id / this.#idSpan);
      const list = bySegment.get(no) ?? [];
      bySegment.set(no, list);
      list.push(id % this.#idSpan);
    }
    const waits: Promise<void>[] = [];
    if (this.#finished) return Promise.resolve();
    for (const [no, indexes] of bySegment) {
      const segment = this.#segments.find((s) => s.no === no);
      if (!segment) continue;
      if (magic === ACK_MAGIC) segment.settled += indexes.length;
      if (magic === SENDING_MAGIC) segment.ledgerMustSync = true;
      segment.pendingLedger.push(encodeLedger(magic, indexes));
      if (magic === SENDING_MAGIC) waits.push(new Promise((done) => segment.ledgerWaiters.push(done)));
    }
    this.#kick();
    return Promise.all(waits).then(() => {});
  }

  #hasWork(): boolean {
    return (
      this.#pending.length > 0 ||
      this.#syncWanted ||
      this.#collectWanted ||
      this.#segments.some((s) => s.pendingLedger.length > 0)
    );
  }

  /** Starts the serial I/O loop unless it runs; it picks up whatever work is there when it gets to it. */
  #kick(): void {
    if (this.#loop || this.#finished) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined;
      if (this.#hasWork()) this.#kick();
    });
  }

  async #run(): Promise<void> {
    // One turn of the event loop: everything appended meanwhile is written (and synced) together.
    await new Promise<void>((done) => setImmediate(done));
    while (this.#hasWork()) {
      if (this.#pending.length > 0 || this.#segments.some((s) => s.pendingLedger.length > 0)) {
        await this.#writeBatch();
      }
      if (this.#syncWanted) {
        this.#syncWanted = false;
        await this.#syncDirty();
      }
      this.#collectWanted = false;
      await this.#collect();
    }
  }

  async #writeBatch(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    const ledgers = this.#segments.filter((s) => s.pendingLedger.length > 0);
    // Only the waiters of the entries this batch writes: entries (and waiters) added while it runs are the
    // next batch's. Resolving every waiter of the segment here let a profile update go out before its
    // being-sent mark was on disk (the kill -9 test caught `$add`s applied twice).
    const waiters = ledgers.flatMap((segment) => segment.ledgerWaiters.splice(0));
    const touched = new Set<Segment>();
    const mustSync: Segment[] = [];
    let failedFrom = batch.length;
    let maxSeq = 0;
    try {
      let start = 0;
      while (start < batch.length) {
        const segment = (batch[start] as PendingRecord).segment;
        let end = start;
        while (end < batch.length && (batch[end] as PendingRecord).segment === segment) end += 1;
        failedFrom = start;
        let length = 0;
        for (let i = start; i < end; i += 1) length += (batch[i] as PendingRecord).bytes;
        const chunk = Buffer.allocUnsafe(length);
        let at = 0;
        for (let i = start; i < end; i += 1) {
          const p = batch[i] as PendingRecord;
          at = writeRecord(chunk, at, p.index, p.seq, p.endpoint, p.json, p.insertId);
        }
        segment.file ??= await openOwned(segment.path, SEGMENT_FLAGS, FILE_MODE);
        await writeAll(segment.file, chunk);
        segment.written += chunk.length;
        segment.writtenRecords = (batch[end - 1] as PendingRecord).index + 1;
        touched.add(segment);
        for (let i = start; i < end; i += 1) maxSeq = Math.max(maxSeq, (batch[i] as PendingRecord).seq);
        this.#written += end - start;
        start = end;
      }
      failedFrom = batch.length;
      for (const segment of ledgers) {
        const entries = segment.pendingLedger;
        segment.pendingLedger = [];
        if (segment.ledgerMustSync) mustSync.push(segment);
        segment.ledgerMustSync = false;
        segment.ledger ??= await openOwned(segment.ledgerPath, LEDGER_FLAGS, FILE_MODE);
        await writeAll(segment.ledger, Buffer.concat(entries));
        touched.add(segment);
      }
      this.#writtenSeq = Math.max(this.#writtenSeq, maxSeq);
      if (this.#options.fsync === 'per-batch') {
        await this.#sync(touched);
        this.#syncs += 1;
        this.#synced = this.#written;
        this.#hooks.synced(this.#writtenSeq);
      } else {
        // A being-sent mark is fsync'd in every policy: it is what keeps a machine crash from applying
        // a profile `$add` twice.
        if (mustSync.length > 0) await Promise.all(mustSync.map((s) => s.ledger?.datasync()));
        for (const segment of touched) this.#dirty.add(segment);
        if (this.#options.fsync === 'never') this.#hooks.synced(this.#writtenSeq);
      }
    } catch (error) {
      await this.#fail(error, batch.slice(failedFrom));
    }
    for (const record of batch) this.#unwrittenBytes -= record.bytes;
    if (this.#behind && this.#unwrittenBytes <= writeBufferBytes(this.#options) / 2) this.#behind = false;
    for (const done of waiters) done();
    this.#hooks.written();
  }

  async #sync(segments: Iterable<Segment>): Promise<void> {
    const syncs: Promise<void>[] = [];
    for (const segment of segments) {
      if (segment.file) syncs.push(segment.file.datasync());
      if (segment.ledger) syncs.push(segment.ledger.datasync());
    }
    await Promise.all(syncs);
  }

  async #syncDirty(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const segments = [...this.#dirty];
    this.#dirty.clear();
    const written = this.#written;
    const seq = this.#writtenSeq;
    try {
      await this.#sync(segments);
      this.#syncs += 1;
      this.#synced = written;
      this.#hooks.synced(seq);
    } catch (error) {
      await this.#fail(error, []);
    }
  }

  /** A write failed: no more appends for a while, and spilled records that did not make it go back. */
  async #fail(error: unknown, unwritten: PendingRecord[]): Promise<void> {
    const code = errorCode(error);
    if (this.#state !== 'failed') {
      this.#hooks.report(
        new IdstitchError(
          'spool_failed',
          `could not write to spool ${this.#dir} (${code}); messages are held in memory under its budget ` +
            `until the spool can be written again (retried every ${RETRY_AFTER_MS / 1000} s)`,
          { cause: error, details: { dir: this.#dir, code } },
        ),
      );
    }
    this.#state = 'failed';
    this.#failedAt = Date.now();
    for (const record of unwritten) {
      // The segment holds a partial write at most: seal it, so nothing follows the damage.
      record.segment.sealed = true;
      record.segment.size = record.segment.written;
      record.segment.records -= 1;
      // Handed back through `lost` below: not to be counted as damaged too.
      record.segment.unread.delete(record.index);
    }
    for (const segment of new Set(unwritten.map((r) => r.segment))) {
      await segment.file?.truncate(segment.written).catch(() => {});
    }
    this.#bytes = this.#segments.reduce((sum, s) => sum + s.size, 0);
    const lost = unwritten.filter((record) => record.spilled);
    this.backlog -= lost.length;
    if (lost.length > 0) {
      this.#hooks.lost(
        lost.map<LostRecord>((r) => ({
          seq: r.seq,
          endpoint: r.endpoint,
          json: r.json,
          bytes: Buffer.byteLength(r.json, 'utf8'),
          insertId: r.insertId,
        })),
      );
    }
  }

  /** Deletes sealed segments once every record is settled and read past. Runs in the I/O loop only. */
  async #collect(): Promise<void> {
    if (this.#reads > 0) return;
    for (const segment of [...this.#segments]) {
      if (!segment.sealed || segment.settled < segment.records || segment.written < segment.size) continue;
      if (this.#cursor?.segment === segment && this.backlog > 0) continue;
      if (segment.pendingLedger.length > 0) continue;
      this.#segments = this.#segments.filter((s) => s !== segment);
      if (this.#active === segment) this.#active = undefined;
      if (this.#cursor?.segment === segment) this.#cursor = undefined;
      this.#bytes -= segment.size;
      this.#dirty.delete(segment);
      await segment.file?.close().catch(() => {});
      await segment.ledger?.close().catch(() => {});
      segment.file = undefined;
      segment.ledger = undefined;
      await removeSegment(segment);
    }
  }
}

/** How many bytes of records may wait for their write: 16 MiB, or two segments' worth if that is more. */
function writeBufferBytes(options: ResolvedSpoolOptions): number {
  return Math.max(WRITE_BUFFER_BYTES, 2 * options.segmentBytes);
}

const WRITE_BUFFER_BYTES = 16 * 1024 * 1024;
