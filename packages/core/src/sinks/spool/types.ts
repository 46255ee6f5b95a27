/**
 * What `MixpanelSink` needs from a spool, and what users configure. Free of Node APIs: the disk
 * implementation (`disk-spool.ts`) is loaded with a dynamic import, only when a spool is configured.
 */
import type { IdstitchError } from '../../errors.js';
import type { MixpanelEndpoint } from '../mixpanel/endpoint.js';

/** When the spool calls `fsync` (`fdatasync`), and so what a machine crash can lose. */
export type SpoolFsyncPolicy = 'per-batch' | 'interval' | 'never';

/** The `spool` option of `MixpanelSink`. */
export interface SpoolOptions {
  /**
   * Directory of the spool, created if missing, used by one process at a time (a `LOCK` file with
   * the PID; a second process is refused and runs without a spool). Default `.idstitch/spool`.
   */
  dir?: string;
  /**
   * `'per-batch'` (default): each group of records written together (one event-loop turn) is
   * fsync'd before it counts as durable. `'interval'`: fsync every `fsyncIntervalMs`. `'never'`: the
   * kernel writes back when it likes. A killed process loses nothing written in every policy; a
   * machine crash loses at most the last turn, the last interval, or what the kernel had not written.
   */
  fsync?: SpoolFsyncPolicy;
  /** With `fsync: 'interval'`. Default 1000 ms. */
  fsyncIntervalMs?: number;
  /** Disk budget: bytes of segment files kept. Past it, the memory policy applies. Default 1 GiB. */
  maxBytes?: number;
  /** Size at which a new segment file starts. Default 8 MiB. */
  segmentBytes?: number;
}

export interface ResolvedSpoolOptions {
  dir: string;
  fsync: SpoolFsyncPolicy;
  fsyncIntervalMs: number;
  maxBytes: number;
  segmentBytes: number;
}

/** A record read back from the spool. */
export interface SpooledRecord {
  id: number;
  /** The writer's sequence number, or 0 for a record a previous process left. */
  seq: number;
  endpoint: MixpanelEndpoint;
  json: string;
  bytes: number;
  /**
   * The event's own `properties.$insert_id`, when the record carries it beside the JSON (every event this
   * spool writes, unless the ID is not short ASCII); `undefined` otherwise: parse `json` for it.
   */
  insertId: string | undefined;
  /**
   * A previous process wrote that it was sending this record and never wrote that it was settled:
   * Mixpanel may or may not have it.
   */
  wasSending: boolean;
}

/** Spilled records whose write failed: they exist only in the caller's hands now. */
export type LostRecord = Omit<SpooledRecord, 'id' | 'wasSending'>;

/** Counters of the spool itself. */
export interface SpoolStats {
  dir: string;
  /** `lost`: another process took the directory over; nothing new is written to it (`spool_locked`). */
  state: 'ok' | 'full' | 'failed' | 'lost';
  fsync: SpoolFsyncPolicy;
  /** Bytes of segment files held. */
  bytes: number;
  segments: number;
  /** Records appended by this process, written to the kernel, and fsync'd. */
  appended: number;
  written: number;
  synced: number;
  syncs: number;
  /**
   * Bytes of memory the index of records held on disk only takes (about 3 bits per record on disk, see
   * `unread-index.ts`). At most `maxBytes / 32` (at least 64 KiB): past it, new messages are not spilled to
   * disk but take the memory policy, reported as `spool_full`.
   */
  indexBytes: number;
}

/** Callbacks a spool uses to reach its sink. */
export interface SpoolHooks {
  report(error: IdstitchError): void;
  /** Records up to this writer sequence number are durable under the fsync policy. */
  synced(seq: number): void;
  /** Writes completed: records may be ready to read back. */
  written(): void;
  lost(records: LostRecord[]): void;
  /**
   * Disk-only records that reading back went past without reading (damaged, cut short on disk, their
   * segment unreadable; reported as `spool_corrupt`): they will never be read back. `seq` 0 for a previous
   * process's.
   */
  damaged(records: DamagedRecord[]): void;
}

/** A disk-only record that can no longer be read back. */
export interface DamagedRecord {
  seq: number;
  endpoint: MixpanelEndpoint;
}

/** The storage behind the sink's spooling. */
export interface Spool {
  /** Unsettled records a previous process left, found at open. */
  readonly recovered: number;
  /** Records held on disk only (not yet read back). */
  readonly backlog: number;
  /**
   * Appends a record; `spilled` ones exist on disk only. `insertId`: an event's own `properties.$insert_id`,
   * kept beside it. `undefined` when the spool cannot take it.
   */
  append(
    seq: number,
    endpoint: MixpanelEndpoint,
    json: string,
    spilled: boolean,
    insertId?: string,
  ): number | undefined;
  /** Reads back disk-only records, oldest first, at least one if any is ready, within the limits. */
  read(maxRecords: number, maxBytes: number): Promise<SpooledRecord[]>;
  /** These records are settled (delivered or dropped) and are never sent again. */
  ack(ids: readonly number[]): void;
  /** Resolves once it is durable that these records are being sent. */
  markSending(ids: readonly number[]): Promise<void>;
  /** These records were not ingested by the last attempt (refused connection, retryable status). */
  markNotSent(ids: readonly number[]): void;
  stats(): SpoolStats;
  /** Writes and fsyncs everything, releases the directory. */
  close(): Promise<void>;
}
