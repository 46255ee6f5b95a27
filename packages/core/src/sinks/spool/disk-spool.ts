/**
 * A durable spool on local disk: append-only segment files of checksummed records, and beside each a
 * ledger of the records settled (and of profile/group updates about to be sent). Node-only; loaded by
 * `MixpanelSink` with a dynamic import when a spool is configured.
 */
import { type FileHandle, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { IdstitchError } from '../../errors.js';
import type { MixpanelEndpoint } from '../mixpanel/options.js';
import { ACK_MAGIC, encodeLedger, encodeRecord, parseLedger, parseRecords, SENDING_MAGIC } from './format.js';
import { lockDirectory } from './lock.js';
import type {
  LostRecord,
  ResolvedSpoolOptions,
  Spool,
  SpooledRecord,
  SpoolHooks,
  SpoolStats,
} from './types.js';

const ID_SPAN = 2 ** 32;
/** After a failed write (disk full, read-only), how long before trying a fresh segment. */
const RETRY_AFTER_MS = 10_000;

interface Segment {
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
  records: number;
  settled: number;
  nextIndex: number;
  /** No more appends. */
  sealed: boolean;
  /** Of a previous process's segment: settled and being-sent indexes from its ledger. */
  acked: Set<number> | undefined;
  sending: Set<number> | undefined;
  pendingLedger: Buffer[];
  /** Resolvers waiting for this segment's pending ledger entries. */
  ledgerWaiters: (() => void)[];
}

interface PendingRecord {
  segment: Segment;
  buffer: Buffer;
  seq: number;
  spilled: boolean;
  endpoint: MixpanelEndpoint;
  json: string;
}

/** Writes all of `buffer`; a write that makes no progress is a failure (ENOSPC and the like). */
async function writeAll(handle: FileHandle, buffer: Buffer, onPartial: () => void): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
    if (bytesWritten === 0) {
      if (done > 0) onPartial();
      throw Object.assign(new Error('no space left on device (short write)'), { code: 'ENOSPC' });
    }
    done += bytesWritten;
  }
}

function segmentName(no: number): string {
  return String(no).padStart(10, '0');
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? 'unknown';
}

/** Opens (creating if needed) and locks a spool directory, and takes stock of what is left in it. */
export async function openDiskSpool(options: ResolvedSpoolOptions, hooks: SpoolHooks): Promise<Spool> {
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const unlock = await lockDirectory(dir);
  try {
    const spool = new DiskSpool(dir, options, hooks, unlock);
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
  readonly #segments: Segment[] = [];
  #active: Segment | undefined;
  #lastNo = 0;
  #bytes = 0;
  #state: 'ok' | 'full' | 'failed' = 'ok';
  #failedAt = 0;
  /** Where reading back resumes while `backlog > 0`. */
  #cursor: { segment: Segment; offset: number } | undefined;
  #pending: PendingRecord[] = [];
  #writing: Promise<void> | undefined;
  #scheduled = false;
  #dirty = new Set<FileHandle>();
  #appended = 0;
  #written = 0;
  #synced = 0;
  #syncs = 0;
  #writtenSeq = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(dir: string, options: ResolvedSpoolOptions, hooks: SpoolHooks, unlock: () => Promise<void>) {
    this.#dir = dir;
    this.#options = options;
    this.#hooks = hooks;
    this.#unlock = unlock;
    if (options.fsync === 'interval') {
      this.#timer = setInterval(() => void this.#syncDirty(), options.fsyncIntervalMs);
      this.#timer.unref();
    }
  }

  /** Reads every segment a previous process left: counts what is unsettled, reports damage. */
  async recover(): Promise<void> {
    const names = await readdir(this.#dir);
    const numbers = names
      .filter((name) => /^\d{10}\.seg$/.test(name))
      .map((name) => Number(name.slice(0, 10)))
      .sort((a, b) => a - b);
    for (const no of numbers) {
      this.#lastNo = Math.max(this.#lastNo, no);
      const segment = this.#segment(no, false);
      const buffer = await readFile(segment.path);
      const ledger = await readFile(segment.ledgerPath).catch(() => Buffer.alloc(0));
      const { acked, sending, damaged } = parseLedger(ledger);
      const { records, damage } = parseRecords(buffer, 0, true);
      for (const hurt of damage) {
        this.#hooks.report(
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
        this.#hooks.report(
          new IdstitchError(
            'spool_torn_tail',
            `spool ledger ${segment.ledgerPath} ends in a damaged entry; records it may have settled are sent ` +
              'again (events are deduplicated by $insert_id)',
            { details: { path: segment.ledgerPath } },
          ),
        );
      }
      let unsettled = 0;
      for (const record of records) if (!acked.has(record.index)) unsettled += 1;
      if (unsettled === 0) {
        await this.#remove(segment);
        continue;
      }
      segment.size = buffer.length;
      segment.written = buffer.length;
      segment.records = records.length;
      segment.settled = records.length - unsettled;
      segment.acked = acked;
      segment.sending = sending;
      this.#segments.push(segment);
      this.#bytes += buffer.length;
      this.recovered += unsettled;
    }
    // Ledgers whose segment is gone.
    for (const name of names) {
      if (/^\d{10}\.ack$/.test(name) && !numbers.includes(Number(name.slice(0, 10)))) {
        await rm(join(this.#dir, name), { force: true });
      }
    }
    this.backlog = this.recovered;
    const first = this.#segments[0];
    if (first) this.#cursor = { segment: first, offset: 0 };
  }

  append(seq: number, endpoint: MixpanelEndpoint, json: string, spilled: boolean): number | undefined {
    if (this.#closed) return undefined;
    if (this.#state === 'failed') {
      if (Date.now() - this.#failedAt < RETRY_AFTER_MS) return undefined;
      this.#state = 'ok';
    }
    let segment = this.#active;
    const size = Buffer.byteLength(json, 'utf8') + 25;
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
      segment = this.#segment(this.#lastNo, true);
      this.#segments.push(segment);
      this.#active = segment;
    }
    const index = segment.nextIndex;
    segment.nextIndex += 1;
    segment.records += 1;
    const buffer = encodeRecord(index, seq, endpoint, json);
    if (spilled) {
      if (this.backlog === 0) this.#cursor = { segment, offset: segment.size };
      this.backlog += 1;
    }
    segment.size += buffer.length;
    this.#bytes += buffer.length;
    this.#appended += 1;
    this.#pending.push({ segment, buffer, seq, spilled, endpoint, json });
    this.#schedule();
    return segment.no * ID_SPAN + index;
  }

  async read(maxRecords: number, maxBytes: number): Promise<SpooledRecord[]> {
    const out: SpooledRecord[] = [];
    let bytes = 0;
    while (this.backlog > 0 && out.length < maxRecords && this.#cursor) {
      const cursor = this.#cursor;
      const { segment } = cursor;
      if (cursor.offset >= segment.written) {
        // Still being written: the write's completion calls `written()` and the reader comes back.
        if (segment.written < segment.size || !segment.sealed) break;
        const next = this.#segments[this.#segments.indexOf(segment) + 1];
        if (!next) break;
        this.#cursor = { segment: next, offset: 0 };
        void this.#collect(segment);
        continue;
      }
      const length = segment.written - cursor.offset;
      const buffer = Buffer.allocUnsafe(length);
      const handle = segment.file ?? (await open(segment.path, 'r'));
      try {
        await handle.read(buffer, 0, length, cursor.offset);
      } finally {
        if (handle !== segment.file) await handle.close();
      }
      const { records, next } = parseRecords(buffer, 0, true);
      let consumed = next;
      for (const record of records) {
        if (segment.acked?.has(record.index)) continue;
        const size = Buffer.byteLength(record.json, 'utf8');
        if (out.length >= maxRecords || (out.length > 0 && bytes + size > maxBytes)) {
          consumed = record.start;
          break;
        }
        out.push({
          id: segment.no * ID_SPAN + record.index,
          seq: segment.own ? record.seq : 0,
          endpoint: record.endpoint,
          json: record.json,
          bytes: size,
          wasSending: segment.sending?.has(record.index) ?? false,
        });
        bytes += size;
        this.backlog -= 1;
      }
      cursor.offset += consumed;
      if (out.length > 0 && (out.length >= maxRecords || bytes >= maxBytes)) break;
    }
    return out;
  }

  ack(ids: readonly number[]): void {
    this.#ledger(ACK_MAGIC, ids, true);
  }

  markSending(ids: readonly number[]): Promise<void> {
    return this.#ledger(SENDING_MAGIC, ids, false);
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
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#drainWrites();
    await this.#syncDirty();
    for (const segment of [...this.#segments]) {
      segment.sealed = true;
      await this.#collect(segment);
      await segment.file?.close().catch(() => {});
      await segment.ledger?.close().catch(() => {});
      segment.file = undefined;
      segment.ledger = undefined;
    }
    await this.#unlock().catch(() => {});
  }

  // ---------------------------------------------------------------------------------------------

  #segment(no: number, own: boolean): Segment {
    const name = segmentName(no);
    return {
      no,
      path: join(this.#dir, `${name}.seg`),
      ledgerPath: join(this.#dir, `${name}.ack`),
      own,
      file: undefined,
      ledger: undefined,
      size: 0,
      written: 0,
      records: 0,
      settled: 0,
      nextIndex: 0,
      sealed: !own,
      acked: undefined,
      sending: undefined,
      pendingLedger: [],
      ledgerWaiters: [],
    };
  }

  #ledger(magic: number, ids: readonly number[], settles: boolean): Promise<void> {
    const bySegment = new Map<number, number[]>();
    for (const id of ids) {
      const no = Math.floor(id / ID_SPAN);
      const list = bySegment.get(no) ?? [];
      bySegment.set(no, list);
      list.push(id % ID_SPAN);
    }
    const waits: Promise<void>[] = [];
    for (const [no, indexes] of bySegment) {
      const segment = this.#segments.find((s) => s.no === no);
      if (!segment) continue;
      if (settles) segment.settled += indexes.length;
      segment.pendingLedger.push(encodeLedger(magic, indexes));
      if (!settles) waits.push(new Promise((done) => segment.ledgerWaiters.push(done)));
    }
    this.#schedule();
    return Promise.all(waits).then(() => {});
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    // One turn of the event loop: everything appended meanwhile is written (and synced) together.
    setImmediate(() => {
      this.#scheduled = false;
      this.#writing = this.#writeLoop().finally(() => {
        this.#writing = undefined;
        if (this.#pending.length > 0 || this.#segments.some((s) => s.pendingLedger.length > 0))
          this.#schedule();
      });
    });
  }

  async #drainWrites(): Promise<void> {
    for (;;) {
      if (this.#writing) await this.#writing;
      else if (
        this.#scheduled ||
        this.#pending.length > 0 ||
        this.#segments.some((s) => s.pendingLedger.length > 0)
      ) {
        this.#scheduled = false;
        this.#writing = this.#writeLoop().finally(() => {
          this.#writing = undefined;
        });
      } else return;
    }
  }

  async #writeLoop(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    const ledgers = this.#segments.filter((s) => s.pendingLedger.length > 0);
    const touched = new Set<FileHandle>();
    let failedFrom = batch.length;
    let maxSeq = 0;
    try {
      let start = 0;
      while (start < batch.length) {
        const segment = (batch[start] as PendingRecord).segment;
        let end = start;
        while (end < batch.length && (batch[end] as PendingRecord).segment === segment) end += 1;
        const chunk = Buffer.concat(batch.slice(start, end).map((p) => p.buffer));
        failedFrom = start;
        segment.file ??= await open(segment.path, 'a+');
        await writeAll(segment.file, chunk, () => {
          // A short write (the disk filled up mid-chunk) leaves a partial record: cut it off.
          void segment.file?.truncate(segment.written).catch(() => {});
        });
        segment.written += chunk.length;
        touched.add(segment.file);
        for (let i = start; i < end; i += 1) maxSeq = Math.max(maxSeq, (batch[i] as PendingRecord).seq);
        this.#written += end - start;
        start = end;
      }
      failedFrom = batch.length;
      for (const segment of ledgers) {
        const entries = segment.pendingLedger;
        segment.pendingLedger = [];
        segment.ledger ??= await open(segment.ledgerPath, 'a');
        await writeAll(segment.ledger, Buffer.concat(entries), () => {});
        touched.add(segment.ledger);
      }
      this.#writtenSeq = Math.max(this.#writtenSeq, maxSeq);
      if (this.#options.fsync === 'per-batch') {
        await Promise.all([...touched].map((handle) => handle.datasync()));
        this.#syncs += 1;
        this.#synced = this.#written;
        this.#hooks.synced(this.#writtenSeq);
      } else {
        for (const handle of touched) this.#dirty.add(handle);
        if (this.#options.fsync === 'never') this.#hooks.synced(this.#writtenSeq);
      }
    } catch (error) {
      this.#fail(error, batch.slice(failedFrom));
    }
    for (const segment of ledgers) for (const done of segment.ledgerWaiters.splice(0)) done();
    this.#hooks.written();
    for (const segment of [...this.#segments]) if (segment.sealed) void this.#collect(segment);
  }

  async #syncDirty(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const handles = [...this.#dirty];
    this.#dirty.clear();
    const written = this.#written;
    const seq = this.#writtenSeq;
    try {
      await Promise.all(handles.map((handle) => handle.datasync()));
      this.#syncs += 1;
      this.#synced = written;
      this.#hooks.synced(seq);
    } catch (error) {
      this.#fail(error, []);
    }
  }

  /** A write failed: no more appends for a while, and spilled records that did not make it go back. */
  #fail(error: unknown, unwritten: PendingRecord[]): void {
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
    }
    for (const segment of new Set(unwritten.map((r) => r.segment))) {
      void segment.file?.truncate(segment.written).catch(() => {});
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
        })),
      );
    }
  }

  /** Deletes a sealed segment once every record is settled and read past. */
  async #collect(segment: Segment): Promise<void> {
    if (!segment.sealed || segment.settled < segment.records || segment.written < segment.size) return;
    if (this.#cursor?.segment === segment && this.backlog > 0) return;
    if (segment.pendingLedger.length > 0) return;
    const at = this.#segments.indexOf(segment);
    if (at < 0) return;
    this.#segments.splice(at, 1);
    if (this.#active === segment) this.#active = undefined;
    this.#bytes -= segment.size;
    this.#dirty.delete(segment.file as FileHandle);
    this.#dirty.delete(segment.ledger as FileHandle);
    await segment.file?.close().catch(() => {});
    await segment.ledger?.close().catch(() => {});
    await this.#remove(segment);
  }

  async #remove(segment: Segment): Promise<void> {
    await rm(segment.path, { force: true }).catch(() => {});
    await rm(segment.ledgerPath, { force: true }).catch(() => {});
  }
}
