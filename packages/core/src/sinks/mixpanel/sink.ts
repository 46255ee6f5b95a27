import type { DropReason, OutgoingMessage, Sink } from '../../messages/types.js';
import { Accounting } from './accounting.js';
import { Admission, type SinkState } from './admission.js';
import { Delivery } from './delivery.js';
import {
  DROP_REASONS,
  type MixpanelMessageOutcome,
  type MixpanelSinkEventName,
  type MixpanelSinkListener,
  type MixpanelSinkStats,
} from './events.js';
import { watchAtExit } from './exit-warning.js';
import { createLanes, type Lanes } from './lane.js';
import { type MixpanelSinkOptions, type ResolvedMixpanelOptions, resolveMixpanelOptions } from './options.js';
import { closeWithin, SignalHandlers } from './shutdown.js';
import { hintSpoolOnce, Spooling } from './spooling.js';

/**
 * Delivers idstitch's messages to Mixpanel's HTTP ingestion API: batched per endpoint, gzip'd where
 * Mixpanel accepts it, retried with backoff, bounded in memory, and accounted for message by message.
 *
 * - `write()` validates, serialises and queues; it never waits on the network and never throws.
 * - `flush()` resolves once everything written before it is delivered or definitively failed.
 * - `close(timeoutMs)` flushes within the deadline and drops (and reports) what is left.
 * - `stats()` satisfies `tracked = delivered + droppedTotal + queued` at all times.
 *
 * The work is split along its seams: {@link Admission} (validation, serialisation, memory budget),
 * {@link Delivery} (batches, requests, retries, partial success, splits, pauses), {@link Accounting}
 * (counters, `settled` callbacks, flush waiters, reports) and `shutdown.ts` (close and signals).
 *
 * @example
 * ```ts
 * const sink = new MixpanelSink({
 *   token: process.env.MIXPANEL_TOKEN!,
 *   serviceAccount: { username: process.env.MIXPANEL_SERVICE_ACCOUNT_USERNAME!, secret: process.env.MIXPANEL_SERVICE_ACCOUNT_SECRET! },
 *   projectId: process.env.MIXPANEL_PROJECT_ID!,
 *   host: 'eu',
 *   handleSignals: true,
 *   onError: (error) => logger.warn({ code: error.code, ...error.details }, error.message),
 * });
 * ```
 */
export class MixpanelSink implements Sink {
  readonly #options: ResolvedMixpanelOptions;
  readonly #lanes: Lanes;
  readonly #accounts: Accounting;
  readonly #admission: Admission;
  readonly #delivery: Delivery;
  readonly #signals: SignalHandlers;
  readonly #unwatchExit: () => void;
  readonly #spooling: Spooling | undefined;
  #state: SinkState = 'open';
  #closePromise: Promise<void> | undefined;

  /** @throws {IdstitchOptionsError} when an option is missing or invalid; the message names the fix. */
  constructor(options: MixpanelSinkOptions) {
    const resolved = resolveMixpanelOptions(options);
    this.#options = resolved;
    this.#accounts = new Accounting(resolved);
    this.#lanes = createLanes(resolved);
    const state = () => this.#state;
    this.#delivery = new Delivery(resolved, this.#accounts, state);
    this.#admission = new Admission(resolved, this.#lanes, this.#accounts, state, (lane) =>
      this.#delivery.pump(lane),
    );
    if (resolved.spool) {
      this.#spooling = new Spooling(resolved.spool, resolved, this.#lanes, this.#accounts, (lane) =>
        this.#delivery.pump(lane),
      );
      this.#admission.spooling = this.#spooling;
      this.#delivery.spooling = this.#spooling;
    } else if (resolved.spoolHint) {
      hintSpoolOnce(this.#accounts);
    }
    this.#signals = new SignalHandlers(resolved.signals, () => this.close());
    // Messages left in the spool are not lost: the next process delivers them.
    this.#unwatchExit = watchAtExit({ queued: () => (this.#spooling ? 0 : this.#accounts.queued) });
  }

  /**
   * Accepts one message: validates it against Mixpanel's rules, serialises it with the project token
   * and queues it for its endpoint. Never throws and never waits; every message it does not queue is
   * counted in `stats().dropped` and, unless routine, reported to `onError`.
   *
   * `settled`, when given, is called once with how this message ended (see
   * {@link MixpanelMessageOutcome}): a durable queue in front of the sink (the Redis outbox) uses it to
   * acknowledge its copy only once Mixpanel accepted it. A `settled` that throws is reported, never
   * rethrown.
   */
  write(message: OutgoingMessage, settled?: (outcome: MixpanelMessageOutcome) => void): void {
    this.#admission.write(message, settled);
  }

  /** Counts messages the producer dropped before they reached the sink (consent, invalid input). */
  recordDrop(reason: DropReason, count = 1): void {
    if (!DROP_REASONS.includes(reason) || !Number.isInteger(count) || count <= 0) return;
    this.#accounts.recordDrop(reason, count);
  }

  /**
   * Resolves once every message written before the call is delivered or definitively failed (not
   * merely sent), messages waiting in the disk spool included. Messages written meanwhile go out with the
   * next batch. Calls made while nothing new was written return the same promise. Never rejects.
   */
  flush(): Promise<void> {
    if (this.#accounts.queued === 0 && this.#accounts.spooled === 0) return Promise.resolve();
    const { promise, fresh } = this.#accounts.waitForQueued();
    if (!fresh) return promise;
    const target = this.#accounts.lastSeq;
    this.#spooling?.refill();
    for (const lane of Object.values(this.#lanes)) {
      lane.flushTarget = Math.max(lane.flushTarget, target);
      this.#delivery.pump(lane);
    }
    return promise;
  }

  /**
   * Flushes, waiting at most `timeoutMs` (default `closeTimeoutMs`), then stops timers and signal
   * handlers. Messages written while closing are still delivered if time allows, because a server
   * that is shutting down still answers the requests in flight. What is left at the deadline is
   * dropped as `shutdown_timeout`, reported once to `onError` (with `details.undelivered`) and counted
   * in `stats().dropped.shutdown_timeout`. Later writes are dropped as `after_close`. Calling it again
   * returns the same promise. Never rejects.
   */
  close(timeoutMs: number = this.#options.closeTimeoutMs): Promise<void> {
    this.#closePromise ??= this.#close(timeoutMs);
    return this.#closePromise;
  }

  /** A snapshot of the counters (and of the spool's, under `spool`, when it is on). */
  stats(): MixpanelSinkStats {
    const stats = this.#accounts.stats();
    const spool = this.#spooling?.stats();
    if (spool) stats.spool = { ...spool, syncedSeq: this.#spooling?.syncedSeq ?? 0 };
    return stats;
  }

  /**
   * Subscribes to delivery events: `delivered`, `retry`, `dropped`, `failedRecord`, `overflow`,
   * `paused`. A listener that throws is reported to `onError` and never breaks delivery.
   * @returns a function that unsubscribes.
   */
  on<E extends MixpanelSinkEventName>(event: E, listener: MixpanelSinkListener<E>): () => void {
    return this.#accounts.emitter.on(event, listener);
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#signals.remove();
    this.#unwatchExit();
    // Messages written while the spool opened are journaled once it is open: let that happen first.
    await this.#spooling?.opened;
    await closeWithin(
      {
        lanes: this.#lanes,
        accounts: this.#accounts,
        setState: (state) => {
          this.#state = state;
        },
        flush: () => this.flush(),
        abort: () => this.#delivery.abort(),
      },
      timeoutMs,
    );
    await this.#spooling?.close();
  }

  /**
   * Resolves once the spool (when on) is open, with what the previous process left counted in
   * `stats().recovered`, or has failed to open (and `onError` was told why). Without a spool, at once.
   * Writing before it resolves is fine: those messages wait and go after the recovered ones.
   */
  async ready(): Promise<void> {
    await this.#spooling?.opened;
  }

  /**
   * Backpressure for scripts and batch jobs, never for the request path: resolves once everything
   * tracked so far is settled, that is delivered or dropped with a reason (`stats().dropped`), including
   * what a previous process left in the spool. Spooled messages count: with Mixpanel down it waits
   * until they are delivered (or `close()` leaves them on disk for the next process). Never rejects.
   *
   * @example
   * ```ts
   * for await (const row of rows) {
   *   sink.write(toEvent(row));
   *   // Keep memory and disk flat during a large import: wait whenever a batch worth is pending.
   *   if (sink.stats().queued + sink.stats().spooled >= 10_000) await sink.drain();
   * }
   * await sink.close();
   * ```
   */
  async drain(): Promise<void> {
    await this.#spooling?.opened;
    await this.flush();
  }
}
