import type { DropReason } from '../../messages/types.js';
import type { SpoolStats } from '../spool/types.js';
import type { MixpanelEndpoint } from './options.js';

/**
 * How one message handed to `MixpanelSink.write(message, settled)` ended: `'delivered'` once Mixpanel
 * accepted it, else the reason it was dropped, as counted in `stats().dropped`. One case is told apart:
 * a message dropped because Mixpanel refused the credentials (401/403, counted as `rejected`) is
 * `'unauthorized'`, because the same message will be accepted once the credentials are fixed.
 */
export type MixpanelMessageOutcome = 'delivered' | DropReason | 'unauthorized';

export { DROP_REASONS } from '../../messages/types.js';

/**
 * Counters of a {@link MixpanelSink}. At every moment
 * `tracked + recovered = delivered + droppedTotal + queued + spooled`. At a quiet moment (after `drain()`)
 * `queued` and `spooled` are 0; after `close()` `queued` is 0 and `spooled` is what was left on disk for
 * the next process, which finds it as its `recovered`. So over a process and the next on one spool
 * directory, `tracked₁ + tracked₂ = delivered₁ + delivered₂ + dropped₁ + dropped₂ + spooled₂` exactly,
 * after a `close()`. (After a kill -9, messages delivered but not yet acknowledged on disk are sent
 * again: Mixpanel deduplicates events by `$insert_id`, and the second count includes them.)
 */
export interface MixpanelSinkStats {
  /** Messages written, plus drops the producer recorded with `recordDrop()` (consent, ...). */
  tracked: number;
  /** Messages accepted into the queue. */
  enqueued: number;
  /** Messages Mixpanel acknowledged. */
  delivered: number;
  /** Messages sent again after a retryable failure, counted once per retry. */
  retried: number;
  /** Messages dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** Sum of `dropped`. */
  droppedTotal: number;
  /** Messages accepted and not yet delivered or dropped (waiting or in flight). */
  queued: number;
  /** Serialised bytes of the `queued` messages. */
  queuedBytes: number;
  /** Messages held only in the spool on disk (not in memory): they are delivered later or by the next process. */
  spooled: number;
  /** Unsettled messages a previous process left in the spool, found at start. */
  recovered: number;
  /**
   * The spool's own counters, when it is on: bytes and segments on disk, records appended, written and
   * fsync'd, and `syncedSeq`, the sequence number up to which messages are durable under the fsync policy.
   */
  spool?: SpoolStats & { syncedSeq: number };
  /** HTTP requests made, retries included. */
  requests: number;
}

/** Payloads of the events a {@link MixpanelSink} emits, by event name. */
export interface MixpanelSinkEvents {
  /** Mixpanel acknowledged a request; `count` messages of it were ingested. */
  delivered: { endpoint: MixpanelEndpoint; count: number; bytes: number; attempt: number };
  /** A request failed in a way worth retrying; it is sent again after `delayMs`. */
  retry: {
    endpoint: MixpanelEndpoint;
    count: number;
    /** The attempt that failed, 1 for the first. */
    attempt: number;
    delayMs: number;
    /** e.g. `HTTP 503`, `timeout`, `network: fetch failed (ECONNREFUSED)`. */
    cause: string;
    /** Whether the delay came from a `Retry-After` header. */
    retryAfter: boolean;
  };
  /** Messages were dropped; counted in `stats().dropped[reason]`. */
  dropped: { reason: DropReason; count: number; endpoint: MixpanelEndpoint | undefined };
  /** Mixpanel refused one record of a batch in strict mode; the rest of the batch was ingested. */
  failedRecord: {
    endpoint: MixpanelEndpoint;
    index: number | undefined;
    insertId: string | undefined;
    field: string;
    message: string;
  };
  /** The queue budget was reached (`started`) or has room again (`stopped`, with the episode's drop count). */
  overflow: { state: 'started' | 'stopped'; dropped: number };
  /** An endpoint refused the credentials; it sends nothing until `resumeAt`. */
  paused: { endpoint: MixpanelEndpoint; status: number; resumeAt: number };
}

export type MixpanelSinkEventName = keyof MixpanelSinkEvents;
export type MixpanelSinkListener<E extends MixpanelSinkEventName> = (payload: MixpanelSinkEvents[E]) => void;

/**
 * A minimal typed emitter. Unlike `EventEmitter`, a listener that throws never reaches the caller:
 * the failure goes to `onListenerError` and the other listeners still run.
 */
export class TypedEmitter {
  private readonly listeners = new Map<MixpanelSinkEventName, Set<(payload: never) => void>>();

  constructor(private readonly onListenerError: (event: string, error: unknown) => void) {}

  on<E extends MixpanelSinkEventName>(event: E, listener: MixpanelSinkListener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  has(event: MixpanelSinkEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends MixpanelSinkEventName>(event: E, payload: MixpanelSinkEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as MixpanelSinkListener<E>)(payload);
      } catch (error) {
        this.onListenerError(event, error);
      }
    }
  }
}
