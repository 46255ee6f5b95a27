import { IdstitchError } from '../../errors.js';
import { MIXPANEL_LIMITS } from '../../messages/limits.js';
import type { ResolvedSpoolOptions, Spool, SpooledRecord, SpoolStats } from '../spool/types.js';
import type { Accounting } from './accounting.js';
import type { MixpanelMessageOutcome } from './events.js';
import type { Lane, Lanes } from './lane.js';
import type { MixpanelEndpoint, ResolvedMixpanelOptions } from './options.js';
import type { QueuedMessage } from './queue.js';

type Settled = ((outcome: MixpanelMessageOutcome) => void) | undefined;

/** A message written while the spool opens. */
interface EarlyMessage {
  seq: number;
  lane: Lane;
  json: string;
  bytes: number;
  insertId: string | undefined;
  settled: Settled;
}

/**
 * Profile and group operations that change the result when Mixpanel applies them twice: `$add`
 * (increments), `$append` (list pushes, and so charges: `$append: { $transactions }`) and `$remove`
 * (taken as not idempotent to be safe). `$set`, `$set_once`, `$unset`, `$union` and `$delete` give the
 * same result applied once or twice, so they are sent again when in doubt.
 */
const NOT_IDEMPOTENT = ['$add', '$append', '$remove'] as const;

/** Whether a profile/group update may be applied twice without changing the result. */
export function isIdempotentUpdate(json: string): boolean {
  try {
    const update = JSON.parse(json) as Record<string, unknown>;
    return !NOT_IDEMPOTENT.some((op) => Object.hasOwn(update, op));
  } catch {
    return false;
  }
}

/** Where the disk implementation lives. Not a literal in `import()`, so bundlers of the web entry leave it out. */
interface Reserved {
  readonly bytes: number;
  readonly messages: number;
}
const NOTHING_RESERVED: Reserved = { bytes: 0, messages: 0 };

const DISK_SPOOL_MODULE = '../spool/disk-spool.js';

/**
 * Puts a durable spool behind the memory queue. Every accepted message is journaled to disk; while the
 * memory budget is used up (or anything still waits on disk, to keep the order) a message lives on disk
 * only and is read back, oldest first, as memory frees up. Settled messages are acknowledged in the
 * spool's ledger so that no process sends them again. Profile and group updates are marked as being sent
 * (durably) before each attempt, and as not sent when the attempt provably did not reach Mixpanel: a
 * later process drops a non-idempotent one still marked (`in_doubt`) instead of applying it twice.
 *
 * The spool itself (`../spool/disk-spool.js`, Node-only) is imported lazily, only when it is on.
 */
export class Spooling {
  #spool: Spool | undefined;
  #opening = true;
  readonly #options: ResolvedMixpanelOptions;
  readonly #lanes: Lanes;
  readonly #accounts: Accounting;
  readonly #pump: (lane: Lane) => void;
  /**
   * Messages written while the spool opens: journaled once it is open, after what it recovered. Held in
   * memory meanwhile, so counted as queued and bounded by the memory budget (an open can hang: a lock on a
   * stalled network disk).
   */
  #early: EarlyMessage[] = [];
  /** `settled` callbacks of messages held on disk only, by sequence number. */
  readonly #settledBySeq = new Map<number, Settled>();
  /** Spool IDs of profile/group updates whose request may have reached Mixpanel. */
  readonly #onWire = new Set<number>();
  #reading = false;
  /** What the read-back in flight may bring into memory: not offered to new messages meanwhile. */
  #reserved: Reserved = NOTHING_RESERVED;
  #closed = false;
  #inDoubt = { engage: 0, groups: 0 };
  /** Asked to read while a read was out: read again when it returns. */
  #again = false;
  /** The synced high-water mark: messages up to this sequence number are durable under the fsync policy. */
  syncedSeq = 0;
  readonly opened: Promise<void>;

  constructor(
    spoolOptions: ResolvedSpoolOptions,
    options: ResolvedMixpanelOptions,
    lanes: Lanes,
    accounts: Accounting,
    pump: (lane: Lane) => void,
  ) {
    this.#options = options;
    this.#lanes = lanes;
    this.#accounts = accounts;
    this.#pump = pump;
    accounts.onSettle = (messages, parked) => this.#settled(messages, parked);
    this.opened = this.#open(spoolOptions);
  }

  /** Delivery waits while the spool opens, so what the last process left goes first. */
  get opening(): boolean {
    return this.#opening;
  }

  /** Whether retries may go on without limit: every message of the batch is safe on disk. */
  durable(messages: readonly QueuedMessage[]): boolean {
    return this.#spool !== undefined && messages.every((message) => message.spoolId !== undefined);
  }

  /**
   * Takes a serialised message. `'spooled'`: taken care of here: on disk only, or (while the spool opens)
   * held until it is open or dropped by the memory policy. A number: its spool ID, and it joins the memory
   * queue. `undefined`: no spool (or the spool cannot take it); the memory policy applies. `insertId`: an
   * event's own `properties.$insert_id`, kept beside it on disk so that reading it back parses nothing.
   */
  take(
    lane: Lane,
    json: string,
    bytes: number,
    settled: Settled,
    insertId?: string,
  ): 'spooled' | number | undefined {
    const accounts = this.#accounts;
    if (this.#opening) {
      if (this.#makeEarlyRoom(bytes)) {
        const seq = accounts.enqueue(bytes);
        this.#early.push({ seq, lane, json, bytes, insertId, settled });
      } else {
        accounts.dropNew('queue_overflow', lane.endpoint, settled);
      }
      return 'spooled';
    }
    const spool = this.#spool;
    if (!spool) return undefined;
    const { maxQueueBytes, maxQueueMessages } = this.#options;
    // The room a read-back in flight was asked to fill is taken: its records arrive after this message.
    const room =
      accounts.queuedBytes + this.#reserved.bytes + bytes <= maxQueueBytes &&
      accounts.queued + this.#reserved.messages < maxQueueMessages;
    const seq = accounts.lastSeq + 1;
    if (spool.backlog > 0 || !room) {
      const id = spool.append(seq, lane.endpoint, json, true, insertId);
      if (id === undefined) return undefined;
      accounts.enqueueSpooled();
      if (settled) this.#settledBySeq.set(seq, settled);
      return 'spooled';
    }
    return spool.append(seq, lane.endpoint, json, false, insertId);
  }

  /** Before a profile or group update goes out, the ledger says so, durably (see `in_doubt`). */
  async beforeSend(endpoint: MixpanelEndpoint, messages: readonly QueuedMessage[]): Promise<void> {
    if (!this.#spool || (endpoint !== 'engage' && endpoint !== 'groups')) return;
    const ids = spoolIds(messages);
    if (ids.length === 0) return;
    await this.#spool.markSending(ids);
    for (const id of ids) this.#onWire.add(id);
  }

  /** The attempt was answered without ingesting (a retryable status) or never connected: not in doubt. */
  notSent(endpoint: MixpanelEndpoint, messages: readonly QueuedMessage[]): void {
    if (!this.#spool || (endpoint !== 'engage' && endpoint !== 'groups')) return;
    const ids = spoolIds(messages);
    for (const id of ids) this.#onWire.delete(id);
    if (ids.length > 0) this.#spool.markNotSent(ids);
  }

  async close(): Promise<void> {
    await this.opened;
    // What is still on disk only stays there, counted as spooled, for the next process.
    this.#closed = true;
    await this.#spool?.close();
  }

  stats(): SpoolStats | undefined {
    return this.#spool?.stats();
  }

  async #open(spoolOptions: ResolvedSpoolOptions): Promise<void> {
    const accounts = this.#accounts;
    try {
      const specifier = DISK_SPOOL_MODULE;
      const { openDiskSpool } = (await import(
        /* @vite-ignore */ specifier
      )) as typeof import('../spool/disk-spool.js');
      this.#spool = await openDiskSpool(spoolOptions, {
        report: (error) => accounts.report(error),
        synced: (seq) => {
          this.syncedSeq = Math.max(this.syncedSeq, seq);
        },
        written: () => this.refill(),
        lost: (records) => {
          // Their write failed: they go back to memory (beyond its budget by one write at most) rather than lost.
          for (const record of records) this.#admit({ ...record, id: undefined, wasSending: false });
        },
        damaged: (records) => {
          for (const record of records) {
            const settled = this.#settledBySeq.get(record.seq);
            this.#settledBySeq.delete(record.seq);
            const message: QueuedMessage = {
              seq: record.seq,
              json: '',
              bytes: 0,
              insertId: undefined,
              settled,
            };
            accounts.dropSpooled('spool_damaged', record.endpoint, [message]);
          }
        },
      });
      accounts.recovered = this.#spool.recovered;
      accounts.spooled += this.#spool.recovered;
    } catch (error) {
      const name = (error as { name?: string }).name;
      const locked = name === 'SpoolLockedError';
      const code = locked ? 'spool_locked' : 'spool_unavailable';
      accounts.report(
        new IdstitchError(
          code,
          `the Mixpanel spool in ${spoolOptions.dir} could not be opened (${(error as Error).message}); delivery ` +
            'goes on with the memory queue only.' +
            (locked
              ? ' Give each process its own spool directory (spool.dir).'
              : name === 'SpoolDirectoryUnsafeError'
                ? '' // Its message says what to run.
                : ' Point spool.dir at a writable directory, or pass spool: false.'),
          { cause: error, details: { dir: spoolOptions.dir, code: (error as { code?: string }).code } },
        ),
      );
    }
    this.#opening = false;
    const early = this.#early;
    this.#early = [];
    for (const message of early) {
      const id = this.#spool?.append(
        message.seq,
        message.lane.endpoint,
        message.json,
        true,
        message.insertId,
      );
      if (id !== undefined) {
        // On disk only from now on: out of the memory budget.
        accounts.queued -= 1;
        accounts.queuedBytes -= message.bytes;
        accounts.spooled += 1;
        if (message.settled) this.#settledBySeq.set(message.seq, message.settled);
      } else {
        // Already counted as queued: it joins its lane as it is.
        message.lane.pending.push(earlyMessage(message));
      }
    }
    for (const lane of Object.values(this.#lanes)) this.#pump(lane);
    this.refill();
  }

  /**
   * The memory policy for messages held while the spool opens (the lanes are empty meanwhile: nothing is
   * sent before what the last process left). True when a message of `bytes` fits.
   */
  #makeEarlyRoom(bytes: number): boolean {
    const accounts = this.#accounts;
    const { maxQueueMessages, maxQueueBytes, overflow } = this.#options;
    const fits = () => accounts.queued < maxQueueMessages && accounts.queuedBytes + bytes <= maxQueueBytes;
    if (fits()) return true;
    accounts.startOverflow();
    if (overflow !== 'drop_oldest') return false;
    while (!fits()) {
      const oldest = this.#early.shift();
      if (!oldest) return false;
      accounts.settle([earlyMessage(oldest)], 'queue_overflow', oldest.lane.endpoint);
    }
    return true;
  }

  #settled(messages: readonly QueuedMessage[], parked: boolean): void {
    const spool = this.#spool;
    if (spool) {
      const ids = spoolIds(messages);
      if (!parked) {
        if (ids.length > 0) spool.ack(ids);
        for (const id of ids) this.#onWire.delete(id);
      } else {
        // Left for the next process at a close deadline: not in doubt unless a request may have carried it.
        const notSent = ids.filter((id) => !this.#onWire.has(id));
        if (notSent.length > 0) spool.markNotSent(notSent);
      }
    }
    this.refill();
  }

  /** Reads disk-only records back while memory has room. */
  refill(): void {
    const spool = this.#spool;
    if (!spool || spool.backlog === 0 || this.#closed) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    const { maxQueueBytes, maxQueueMessages, maxBatchBytes } = this.#options;
    const room = maxQueueBytes - this.#accounts.queuedBytes;
    // A read always brings at least one record, whatever its size: wait for room for the largest message the
    // sink takes (or for an empty queue, when the budget is smaller than that), so memory stays in budget.
    const largest = Math.min(MIXPANEL_LIMITS.maxMessageBytes, maxBatchBytes, maxQueueBytes);
    if (room < largest || this.#accounts.queued >= maxQueueMessages) return;
    this.#reading = true;
    const count = Math.min(10_000, maxQueueMessages - this.#accounts.queued);
    this.#reserved = { bytes: room, messages: count };
    void spool.read(count, room).then(
      (records) => {
        this.#reading = false;
        this.#reserved = NOTHING_RESERVED;
        // Closed meanwhile: they stay on disk (unacknowledged, still counted as spooled) for the next process.
        if (this.#closed) return;
        for (const record of records) this.#admit(record);
        this.#reportInDoubt();
        const again = this.#again;
        this.#again = false;
        if (records.length > 0 || again) this.refill();
      },
      (error) => {
        this.#reading = false;
        this.#reserved = NOTHING_RESERVED;
        this.#accounts.report(
          new IdstitchError('spool_failed', `could not read the spool back (${(error as Error).message})`, {
            cause: error,
          }),
        );
      },
    );
  }

  #admit(record: Omit<SpooledRecord, 'id'> & { id: number | undefined }): void {
    const accounts = this.#accounts;
    const lane = this.#lanes[record.endpoint];
    accounts.spooled -= 1;
    const message: QueuedMessage = {
      seq: record.seq,
      json: record.json,
      bytes: record.bytes,
      insertId: record.insertId ?? insertIdOf(record.endpoint, record.json),
      settled: this.#settledBySeq.get(record.seq),
      spoolId: record.id,
    };
    this.#settledBySeq.delete(record.seq);
    if (record.wasSending && !isIdempotentUpdate(record.json)) {
      accounts.queued += 1;
      accounts.queuedBytes += record.bytes;
      accounts.settle([message], 'in_doubt', record.endpoint);
      this.#inDoubt[record.endpoint === 'engage' ? 'engage' : 'groups'] += 1;
      return;
    }
    this.#push(lane, message);
  }

  /** One report per read for the updates dropped as in doubt, not one per update. */
  #reportInDoubt(): void {
    const { engage, groups } = this.#inDoubt;
    if (engage + groups === 0) return;
    this.#inDoubt = { engage: 0, groups: 0 };
    this.#accounts.report(
      new IdstitchError(
        'in_doubt',
        `${engage} profile and ${groups} group updates that add, append or remove were being sent when the ` +
          'last process stopped; Mixpanel may have applied them and does not deduplicate updates, so they were ' +
          'not sent again (counted in stats().dropped.in_doubt)',
        { details: { engage, groups } },
      ),
    );
  }

  #push(lane: Lane, message: QueuedMessage): void {
    this.#accounts.queued += 1;
    this.#accounts.queuedBytes += message.bytes;
    lane.pending.push(message);
    this.#pump(lane);
  }
}

const SPOOL_HINTED = Symbol.for('idstitch.mixpanel.spoolHinted');

/** In production without a spool: one report per process (shared by ESM and CJS copies) saying how to turn it on. */
export function hintSpoolOnce(accounts: Accounting): void {
  const slots = globalThis as { [SPOOL_HINTED]?: boolean };
  if (slots[SPOOL_HINTED]) return;
  slots[SPOOL_HINTED] = true;
  accounts.report(
    new IdstitchError(
      'spool_unavailable',
      'MixpanelSink runs without a disk spool in production: what is queued in memory is lost if the process ' +
        "is killed or Mixpanel stays unreachable past the memory budget. Pass spool: { dir: '/var/lib/<app>/" +
        "idstitch-spool' } (a persistent directory, one per process) to keep it, or spool: false to silence this.",
      { details: { hint: true } },
    ),
  );
}

/** A message held while the spool opened, as the memory queue holds it (not journaled: no spool ID). */
function earlyMessage(message: EarlyMessage): QueuedMessage {
  const { seq, json, bytes, settled, insertId } = message;
  return { seq, json, bytes, settled, insertId };
}

function spoolIds(messages: readonly QueuedMessage[]): number[] {
  const ids: number[] = [];
  for (const message of messages) if (message.spoolId !== undefined) ids.push(message.spoolId);
  return ids;
}

/**
 * `$insert_id` of an event read back from disk without it beside the JSON (written before the spool kept it
 * there, or not short ASCII), to match `failed_records` that name it: the event's own (`properties.$insert_id`),
 * never one nested in a caller property, which a text search of the JSON found first (caller properties are
 * serialised before the stamped `$insert_id`).
 */
function insertIdOf(endpoint: MixpanelEndpoint, json: string): string | undefined {
  if (endpoint !== 'import' && endpoint !== 'track') return undefined;
  try {
    const id = (JSON.parse(json) as { properties?: { $insert_id?: unknown } } | null)?.properties?.$insert_id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
