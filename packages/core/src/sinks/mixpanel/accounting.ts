import { IdstitchError } from '../../errors.js';
import type { DropReason } from '../../messages/types.js';
import { DROP_REASONS, type MixpanelMessageOutcome, type MixpanelSinkStats, TypedEmitter } from './events.js';
import type { Batch } from './lane.js';
import type { MixpanelEndpoint, ResolvedMixpanelOptions } from './options.js';
import type { QueuedMessage } from './queue.js';

interface FlushWaiter {
  readonly target: number;
  remaining: number;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

/**
 * Where every message ends up: the counters behind `stats()`, the `settled` callbacks, the `flush()`
 * waiters they complete, the overflow episode, and the reports to `onError`. Everything that counts a
 * message goes through here, so `tracked = delivered + droppedTotal + queued` holds by construction.
 */
export class Accounting {
  readonly emitter: TypedEmitter;
  /** Sequence number of the last message accepted. */
  lastSeq = 0;
  queued = 0;
  queuedBytes = 0;
  tracked = 0;
  enqueued = 0;
  delivered = 0;
  retried = 0;
  requests = 0;
  spooled = 0;
  recovered = 0;
  /** Told of messages leaving the memory queue (to settle their spool records). */
  onSettle: ((messages: readonly QueuedMessage[], parked: boolean) => void) | undefined;
  readonly dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<
    DropReason,
    number
  >;
  readonly #options: ResolvedMixpanelOptions;
  #waiters: FlushWaiter[] = [];
  #keepAlive: NodeJS.Timeout | undefined;
  #overflowing = false;
  #overflowDropped = 0;

  constructor(options: ResolvedMixpanelOptions) {
    this.#options = options;
    this.emitter = new TypedEmitter((event, error) =>
      this.report(
        new IdstitchError(
          'hook_failed',
          `a listener of the "${event}" event threw; other listeners still ran`,
          {
            cause: error,
            details: { event },
          },
        ),
      ),
    );
  }

  /** A snapshot of the counters. */
  stats(): MixpanelSinkStats {
    const dropped = { ...this.dropped };
    return {
      tracked: this.tracked,
      enqueued: this.enqueued,
      delivered: this.delivered,
      retried: this.retried,
      dropped,
      droppedTotal: Object.values(dropped).reduce((sum, n) => sum + n, 0),
      queued: this.queued,
      queuedBytes: this.queuedBytes,
      spooled: this.spooled,
      recovered: this.recovered,
      requests: this.requests,
    };
  }

  report(error: IdstitchError): void {
    try {
      this.#options.onError(error);
    } catch {
      // A failing error hook must not break tracking, and there is nowhere left to report it.
    }
  }

  /** Counts a message that never entered the queue. */
  dropNew(
    reason: DropReason,
    endpoint: MixpanelEndpoint | undefined,
    settled?: (outcome: MixpanelMessageOutcome) => void,
    told: MixpanelMessageOutcome = reason,
  ): void {
    this.dropped[reason] += 1;
    if (reason === 'queue_overflow') this.#overflowDropped += 1;
    this.emitter.emit('dropped', { reason, count: 1, endpoint });
    if (settled) this.tell(settled, told);
  }

  /** Counts what producers dropped before the sink saw it (consent, invalid input). */
  recordDrop(reason: DropReason, count: number): void {
    this.tracked += count;
    this.dropped[reason] += count;
    this.emitter.emit('dropped', { reason, count, endpoint: undefined });
  }

  /** Counts a message accepted into a lane's queue. */
  enqueue(bytes: number): number {
    this.lastSeq += 1;
    this.queued += 1;
    this.queuedBytes += bytes;
    this.enqueued += 1;
    return this.lastSeq;
  }

  release(batch: Batch, outcome: 'delivered' | DropReason, told: MixpanelMessageOutcome = outcome): void {
    batch.owned = false;
    this.settle(batch.messages, outcome, batch.lane.endpoint, told);
  }

  /** Calls a message's `settled` callback; its failure is reported, never thrown into delivery. */
  tell(settled: (outcome: MixpanelMessageOutcome) => void, outcome: MixpanelMessageOutcome): void {
    try {
      settled(outcome);
    } catch (error) {
      this.report(
        new IdstitchError('hook_failed', 'a write() settled callback threw; delivery went on', {
          cause: error,
          details: { outcome },
        }),
      );
    }
  }

  /** Counts queued messages as delivered or dropped, and wakes the `flush()` calls they complete. */
  settle(
    messages: readonly QueuedMessage[],
    outcome: 'delivered' | DropReason,
    endpoint: MixpanelEndpoint,
    told: MixpanelMessageOutcome = outcome,
  ): void {
    const count = messages.length;
    if (count === 0) return;
    let bytes = 0;
    for (const message of messages) bytes += message.bytes;
    this.queued -= count;
    this.queuedBytes -= bytes;
    if (outcome === 'delivered') {
      this.delivered += count;
    } else {
      this.dropped[outcome] += count;
      if (outcome === 'queue_overflow') this.#overflowDropped += count;
      this.emitter.emit('dropped', { reason: outcome, count, endpoint });
    }
    for (const message of messages) if (message.settled) this.tell(message.settled, told);
    this.onSettle?.(messages, false);
    this.#wake(messages);
    if (this.#overflowing && outcome !== 'queue_overflow') this.#maybeStopOverflow();
  }

  /** Journaled messages left for the next process at a close deadline: they move to `spooled`. */
  park(messages: readonly QueuedMessage[]): void {
    let bytes = 0;
    for (const message of messages) bytes += message.bytes;
    this.queued -= messages.length;
    this.queuedBytes -= bytes;
    this.spooled += messages.length;
    this.onSettle?.(messages, true);
    this.#wake(messages);
  }

  /** Messages of this process held on disk only get a sequence number too, so `flush()` waits for them. */
  enqueueSpooled(): number {
    this.lastSeq += 1;
    this.enqueued += 1;
    this.spooled += 1;
    return this.lastSeq;
  }

  #wake(messages: readonly QueuedMessage[]): void {
    if (this.#waiters.length > 0) {
      for (const waiter of this.#waiters) {
        let settled = 0;
        for (const message of messages) if (message.seq <= waiter.target) settled += 1;
        waiter.remaining -= settled;
      }
      const done = this.#waiters.filter((waiter) => waiter.remaining <= 0);
      if (done.length > 0) {
        this.#waiters = this.#waiters.filter((waiter) => waiter.remaining > 0);
        for (const waiter of done) waiter.resolve();
        this.updateKeepAlive();
      }
    }
  }

  /**
   * A promise for everything queued up to the last sequence number; `undefined` when the last call
   * already waits for exactly that (its promise is returned instead, and nothing needs pumping).
   */
  waitForQueued(): { promise: Promise<void>; fresh: boolean } {
    const target = this.lastSeq;
    const last = this.#waiters.at(-1);
    if (last && last.target === target) return { promise: last.promise, fresh: false };
    let resolve!: () => void;
    const promise = new Promise<void>((done) => {
      resolve = done;
    });
    // Everything queued has a sequence number up to `target`, so all of it must settle.
    this.#waiters.push({ target, remaining: this.queued + this.spooled, promise, resolve });
    this.updateKeepAlive();
    return { promise, fresh: true };
  }

  /**
   * While someone awaits `flush()` or `close()`, a referenced handle keeps the process alive: every
   * other timer is unref'd, and a script ending in `await sink.flush()` must not exit mid-backoff.
   */
  updateKeepAlive(): void {
    if (this.#waiters.length > 0 && !this.#keepAlive) {
      this.#keepAlive = setInterval(() => {}, 2 ** 30);
    } else if (this.#waiters.length === 0 && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  startOverflow(): void {
    if (this.#overflowing) return;
    this.#overflowing = true;
    this.#overflowDropped = 0;
    const { maxQueueMessages, maxQueueBytes, overflow } = this.#options;
    this.emitter.emit('overflow', { state: 'started', dropped: 0 });
    this.report(
      new IdstitchError(
        'queue_overflow',
        `Mixpanel delivery queue is full (${this.queued} messages, ${this.queuedBytes} bytes); dropping ` +
          `${overflow === 'drop_newest' ? 'new' : 'the oldest waiting'} messages until it drains`,
        { details: { state: 'started', maxQueueMessages, maxQueueBytes, policy: overflow } },
      ),
    );
  }

  #maybeStopOverflow(): void {
    // Half the budget, not the first free slot: otherwise a queue hovering at the limit would report
    // a start and a stop for every other message.
    const { maxQueueMessages, maxQueueBytes } = this.#options;
    if (this.queued > maxQueueMessages / 2 || this.queuedBytes > maxQueueBytes / 2) return;
    this.#overflowing = false;
    const dropped = this.#overflowDropped;
    this.emitter.emit('overflow', { state: 'stopped', dropped });
    this.report(
      new IdstitchError(
        'queue_overflow',
        `Mixpanel delivery queue has room again; ${dropped} messages were dropped while it was full`,
        { details: { state: 'stopped', dropped } },
      ),
    );
  }

  /**
   * Messages held on disk only whose records can no longer be read back (damaged on disk, cut short,
   * deleted): they move from `spooled` to `dropped[reason]`, and the `flush()` calls waiting for them wake.
   */
  dropSpooled(reason: DropReason, endpoint: MixpanelEndpoint, messages: readonly QueuedMessage[]): void {
    const count = messages.length;
    if (count === 0) return;
    this.spooled -= count;
    this.dropped[reason] += count;
    this.emitter.emit('dropped', { reason, count, endpoint });
    for (const message of messages) if (message.settled) this.tell(message.settled, reason);
    this.#wake(messages);
  }
}
