import { IdstitchError } from '../../errors.js';
import { MIXPANEL_LIMITS } from '../../messages/limits.js';
import type { DropReason, OutgoingMessage, Sink } from '../../messages/types.js';
import { validateUnlessValidated } from '../../messages/validate.js';
import {
  DROP_REASONS,
  type MixpanelMessageOutcome,
  type MixpanelSinkEventName,
  type MixpanelSinkListener,
  type MixpanelSinkStats,
  TypedEmitter,
} from './events.js';
import {
  type MixpanelEndpoint,
  type MixpanelSinkOptions,
  type ResolvedMixpanelOptions,
  resolveMixpanelOptions,
} from './options.js';
import { arrayBytes, PendingQueue, type QueuedMessage } from './queue.js';
import { type FailedRecord, interpretResponse, type ResponseOutcome } from './response.js';
import { parseRetryAfter, retryDelay } from './retry.js';
import { fetchSend, gzip, type HttpSend, TransportError } from './transport.js';

/** The queue, timer and concurrency state of one endpoint. */
interface Lane {
  readonly endpoint: MixpanelEndpoint;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  readonly pending: PendingQueue;
  /** Batches that own messages (encoding, in flight, or waiting to retry). */
  readonly batches: Set<Batch>;
  /** Concurrency slots in use. The halves of a split batch run inside their parent's slot. */
  slots: number;
  /** Batches waiting out a backoff; while any does, no new batch starts on this endpoint. */
  backingOff: number;
  /** The oldest waiting message has waited a full flush interval. */
  due: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Everything up to this sequence number is to be sent now, because `flush()` asked. */
  flushTarget: number;
  /** After a 401/403, nothing is sent (and new messages are dropped) until then. */
  pausedUntil: number;
}

interface Batch {
  readonly lane: Lane;
  readonly messages: readonly QueuedMessage[];
  /** Uncompressed size of the JSON array. */
  readonly bytes: number;
  /** Encoded once, so every retry sends the same bytes. */
  body: Uint8Array | undefined;
  attempts: number;
  firstAttemptAt: number | undefined;
  /** False once its messages were counted (delivered or dropped) or handed to the halves of a split. */
  owned: boolean;
}

interface FlushWaiter {
  readonly target: number;
  remaining: number;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

/**
 * Closes started by a signal, in every sink of the process. Kept in a `Symbol.for` slot so that an ESM
 * and a CJS copy of this module share it: the last sink to finish is the one that re-raises.
 */
const SIGNAL_CLOSINGS = Symbol.for('idstitch.mixpanel.signalClosings');

function signalClosings(): Set<Promise<void>> {
  const slots = globalThis as { [SIGNAL_CLOSINGS]?: Set<Promise<void>> };
  slots[SIGNAL_CLOSINGS] ??= new Set();
  return slots[SIGNAL_CLOSINGS];
}

const KIND_NOUN = { import: 'events', track: 'events', engage: 'profile updates', groups: 'group updates' };

/**
 * Delivers idstitch's messages to Mixpanel's HTTP ingestion API: batched per endpoint, gzip'd where
 * Mixpanel accepts it, retried with backoff, bounded in memory, and accounted for message by message.
 *
 * - `write()` validates, serialises and queues; it never waits on the network and never throws.
 * - `flush()` resolves once everything written before it is delivered or definitively failed.
 * - `close(timeoutMs)` flushes within the deadline and drops (and reports) what is left.
 * - `stats()` satisfies `tracked = delivered + droppedTotal + queued` at all times.
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
  /** The project token as a JSON string, spliced into every serialised event. */
  readonly #tokenJson: string;
  readonly #lanes: Readonly<Record<MixpanelEndpoint, Lane>>;
  readonly #emitter: TypedEmitter;
  readonly #send: HttpSend = fetchSend;
  /** Aborted when `close()` runs out of time: cancels requests in flight and backoff waits. */
  readonly #abort = new AbortController();
  readonly #signalHandlers = new Map<NodeJS.Signals, () => void>();
  readonly #unauthorizedReported = new Set<MixpanelEndpoint>();
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closePromise: Promise<void> | undefined;
  #lastSeq = 0;
  #queued = 0;
  #queuedBytes = 0;
  #tracked = 0;
  #enqueued = 0;
  #delivered = 0;
  #retried = 0;
  #requests = 0;
  readonly #dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<
    DropReason,
    number
  >;
  #waiters: FlushWaiter[] = [];
  #keepAlive: NodeJS.Timeout | undefined;
  #overflowing = false;
  #overflowDropped = 0;
  #afterCloseReported = false;

  /** @throws {IdstitchOptionsError} when an option is missing or invalid; the message names the fix. */
  constructor(options: MixpanelSinkOptions) {
    const resolved = resolveMixpanelOptions(options);
    this.#options = resolved;
    this.#tokenJson = JSON.stringify(resolved.token);
    this.#emitter = new TypedEmitter((event, error) =>
      this.#report(
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
    const base = resolved.baseUrl;
    const lane = (endpoint: MixpanelEndpoint, query: string, compressible: boolean): Lane => {
      const url = new URL(endpoint, base);
      url.search = query;
      const compressed = compressible && resolved.compress;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'idstitch',
      };
      if (compressed) headers['content-encoding'] = 'gzip';
      if (endpoint === 'import') headers.authorization = resolved.importAuthorization;
      return {
        endpoint,
        url: url.href,
        headers,
        gzip: compressed,
        pending: new PendingQueue(),
        batches: new Set(),
        slots: 0,
        backingOff: 0,
        due: false,
        timer: undefined,
        flushTarget: 0,
        pausedUntil: 0,
      };
    };
    const importQuery = resolved.projectId ? `strict=1&project_id=${resolved.projectId}` : 'strict=1';
    this.#lanes = {
      import: lane('import', importQuery, true),
      // ip=0: geolocate from the event's `ip` property, never from this server's address.
      track: lane('track', 'verbose=1&ip=0', true),
      // /engage and /groups do not accept gzip.
      engage: lane('engage', 'verbose=1&ip=0', false),
      groups: lane('groups', 'verbose=1', false),
    };
    for (const signal of resolved.signals) {
      const handler = () => this.#onSignal(signal);
      this.#signalHandlers.set(signal, handler);
      process.on(signal, handler);
    }
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
    this.#tracked += 1;
    try {
      this.#accept(message, settled);
    } catch (error) {
      // Only serialising can throw (a getter, a BigInt the producer let through); nothing was queued.
      this.#dropNew('invalid', undefined, settled);
      this.#report(
        new IdstitchError(
          'invalid_message',
          `a ${describeKind(message)} could not be serialised and was dropped`,
          {
            cause: error,
            details: { kind: safeKind(message) },
          },
        ),
      );
    }
  }

  /** Counts messages the producer dropped before they reached the sink (consent, invalid input). */
  recordDrop(reason: DropReason, count = 1): void {
    if (!DROP_REASONS.includes(reason) || !Number.isInteger(count) || count <= 0) return;
    this.#tracked += count;
    this.#dropped[reason] += count;
    this.#emitter.emit('dropped', { reason, count, endpoint: undefined });
  }

  /**
   * Resolves once every message written before the call is delivered or definitively failed (not
   * merely sent). Messages written meanwhile go out with the next batch. Calls made while nothing new
   * was written return the same promise. Never rejects.
   */
  flush(): Promise<void> {
    if (this.#queued === 0) return Promise.resolve();
    const target = this.#lastSeq;
    const last = this.#waiters.at(-1);
    if (last && last.target === target) return last.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((done) => {
      resolve = done;
    });
    // Everything queued has a sequence number up to `target`, so all of it must settle.
    this.#waiters.push({ target, remaining: this.#queued, promise, resolve });
    this.#updateKeepAlive();
    for (const lane of Object.values(this.#lanes)) {
      lane.flushTarget = Math.max(lane.flushTarget, target);
      this.#pump(lane);
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

  /** A snapshot of the counters. */
  stats(): MixpanelSinkStats {
    const dropped = { ...this.#dropped };
    return {
      tracked: this.#tracked,
      enqueued: this.#enqueued,
      delivered: this.#delivered,
      retried: this.#retried,
      dropped,
      droppedTotal: Object.values(dropped).reduce((sum, n) => sum + n, 0),
      queued: this.#queued,
      queuedBytes: this.#queuedBytes,
      requests: this.#requests,
    };
  }

  /**
   * Subscribes to delivery events: `delivered`, `retry`, `dropped`, `failedRecord`, `overflow`,
   * `paused`. A listener that throws is reported to `onError` and never breaks delivery.
   * @returns a function that unsubscribes.
   */
  on<E extends MixpanelSinkEventName>(event: E, listener: MixpanelSinkListener<E>): () => void {
    return this.#emitter.on(event, listener);
  }

  // ---------------------------------------------------------------------------------------------
  // Accepting messages

  #accept(message: OutgoingMessage, settled: ((outcome: MixpanelMessageOutcome) => void) | undefined): void {
    const now = this.#options.clock.now();
    if (this.#state === 'closed') {
      this.#dropNew('after_close', undefined, settled);
      if (!this.#afterCloseReported) {
        this.#afterCloseReported = true;
        this.#report(
          new IdstitchError(
            'after_close',
            `a ${describeKind(message)} was written after the Mixpanel sink was closed and was dropped; ` +
              'later ones are only counted in stats().dropped.after_close',
            { details: { kind: safeKind(message) } },
          ),
        );
      }
      return;
    }
    const problem = validateUnlessValidated(message, now);
    if (problem) {
      this.#dropNew('invalid', undefined, settled);
      this.#report(
        new IdstitchError(
          'invalid_message',
          `${describeKind(message)} dropped before sending: ${problem.field}: ${problem.message}`,
          { details: { kind: safeKind(message), field: problem.field, problem: problem.message } },
        ),
      );
      return;
    }
    const lane = this.#laneFor(message);
    if (lane === undefined) {
      this.#dropNew('invalid', 'import', settled);
      this.#report(
        new IdstitchError(
          'invalid_message',
          '$merge event dropped: Mixpanel accepts $merge only on /import with a service account or the API ' +
            'secret; pass serviceAccount + projectId (or apiSecret) to MixpanelSink',
          { details: { kind: 'event', event: '$merge' } },
        ),
      );
      return;
    }
    if (lane.pausedUntil > now) {
      // Credentials were refused and already reported; sending would only be refused again.
      this.#dropNew('rejected', lane.endpoint, settled, 'unauthorized');
      return;
    }
    // With drop_newest and every message slot taken, nothing written now can be queued, whatever its size:
    // drop it before paying for serialisation, so that a long outage costs the app as little as possible.
    if (this.#options.overflow === 'drop_newest' && this.#queued >= this.#options.maxQueueMessages) {
      this.#startOverflow();
      this.#dropNew('queue_overflow', lane.endpoint, settled);
      return;
    }
    const json = this.#serialize(message);
    const bytes = Buffer.byteLength(json, 'utf8');
    const limit = Math.min(MIXPANEL_LIMITS.maxMessageBytes, this.#options.maxBatchBytes - 2);
    if (bytes > limit) {
      this.#dropNew('invalid', lane.endpoint, settled);
      this.#report(
        new IdstitchError(
          'message_too_large',
          `${describeKind(message)} dropped before sending: ${bytes} bytes serialised, the limit is ${limit}`,
          { details: { kind: message.kind, bytes, limit } },
        ),
      );
      return;
    }
    if (!this.#makeRoom(bytes)) {
      this.#dropNew('queue_overflow', lane.endpoint, settled);
      return;
    }
    this.#lastSeq += 1;
    const insertId = message.kind === 'event' ? message.payload.properties.$insert_id : undefined;
    lane.pending.push({ seq: this.#lastSeq, json, bytes, insertId, settled });
    this.#queued += 1;
    this.#queuedBytes += bytes;
    this.#enqueued += 1;
    this.#pump(lane);
  }

  #laneFor(message: OutgoingMessage): Lane | undefined {
    if (message.kind === 'profile') return this.#lanes.engage;
    if (message.kind === 'group') return this.#lanes.groups;
    if (message.payload.event === '$merge') {
      return this.#options.canMerge ? this.#lanes.import : undefined;
    }
    return this.#lanes[this.#options.eventEndpoint];
  }

  #serialize(message: OutgoingMessage): string {
    const token = this.#options.token;
    if (message.kind === 'event') {
      const { event, properties } = message.payload;
      if (Object.hasOwn(properties, 'token') || (properties as { toJSON?: unknown }).toJSON !== undefined) {
        return JSON.stringify({ event, properties: { ...properties, token } });
      }
      // The same bytes as `{ ...properties, token }` (token last), without copying every property once more for
      // each event: the copy cost as much as the serialisation itself. `{"event":…,"properties":{…}}` ends in
      // `}}`, and the character before them is `{` only when there are no properties.
      const json = JSON.stringify({ event, properties });
      const comma = json.charCodeAt(json.length - 3) === 123 ? '' : ',';
      return `${json.slice(0, -2)}${comma}"token":${this.#tokenJson}}}`;
    }
    return JSON.stringify({ ...message.payload, $token: token });
  }

  /** Applies the overflow policy; true when the new message fits. */
  #makeRoom(bytes: number): boolean {
    const { maxQueueMessages, maxQueueBytes, overflow } = this.#options;
    const fits = () => this.#queued < maxQueueMessages && this.#queuedBytes + bytes <= maxQueueBytes;
    if (fits()) return true;
    this.#startOverflow();
    if (overflow === 'drop_oldest') {
      while (!fits()) {
        // Only waiting messages can go; those in flight may already be ingested.
        let oldest: Lane | undefined;
        for (const lane of Object.values(this.#lanes)) {
          const head = lane.pending.peek();
          if (head && (!oldest || head.seq < (oldest.pending.peek() as QueuedMessage).seq)) oldest = lane;
        }
        if (!oldest) return false;
        this.#settle([oldest.pending.shift() as QueuedMessage], 'queue_overflow', oldest.endpoint);
      }
      return true;
    }
    return false;
  }

  #startOverflow(): void {
    if (this.#overflowing) return;
    this.#overflowing = true;
    this.#overflowDropped = 0;
    const { maxQueueMessages, maxQueueBytes, overflow } = this.#options;
    this.#emitter.emit('overflow', { state: 'started', dropped: 0 });
    this.#report(
      new IdstitchError(
        'queue_overflow',
        `Mixpanel delivery queue is full (${this.#queued} messages, ${this.#queuedBytes} bytes); dropping ` +
          `${overflow === 'drop_newest' ? 'new' : 'the oldest waiting'} messages until it drains`,
        { details: { state: 'started', maxQueueMessages, maxQueueBytes, policy: overflow } },
      ),
    );
  }

  #maybeStopOverflow(): void {
    // Half the budget, not the first free slot: otherwise a queue hovering at the limit would report
    // a start and a stop for every other message.
    const { maxQueueMessages, maxQueueBytes } = this.#options;
    if (this.#queued > maxQueueMessages / 2 || this.#queuedBytes > maxQueueBytes / 2) return;
    this.#overflowing = false;
    const dropped = this.#overflowDropped;
    this.#emitter.emit('overflow', { state: 'stopped', dropped });
    this.#report(
      new IdstitchError(
        'queue_overflow',
        `Mixpanel delivery queue has room again; ${dropped} messages were dropped while it was full`,
        { details: { state: 'stopped', dropped } },
      ),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Batching and delivery

  /** Starts as many batches as the endpoint's slots, backoff state and batching rules allow. */
  #pump(lane: Lane): void {
    if (this.#state === 'closed') return;
    const { concurrency, maxBatchMessages, maxBatchBytes } = this.#options;
    while (lane.slots < concurrency && lane.backingOff === 0 && lane.pending.length > 0) {
      const head = lane.pending.peek() as QueuedMessage;
      const ready =
        lane.due ||
        this.#state === 'closing' ||
        head.seq <= lane.flushTarget ||
        lane.pending.hasFullBatch(maxBatchMessages, maxBatchBytes);
      if (!ready) break;
      const batch = this.#newBatch(lane, lane.pending.take(maxBatchMessages, maxBatchBytes));
      lane.slots += 1;
      void this.#deliver(batch).finally(() => {
        lane.slots -= 1;
        this.#pump(lane);
      });
    }
    if (lane.pending.length === 0) {
      lane.due = false;
      if (lane.timer) {
        clearTimeout(lane.timer);
        lane.timer = undefined;
      }
    } else if (!lane.timer && !lane.due) {
      lane.timer = setTimeout(() => {
        lane.timer = undefined;
        lane.due = true;
        this.#pump(lane);
      }, this.#options.flushIntervalMs);
      // An idle sink must never be what keeps the process alive.
      lane.timer.unref();
    }
  }

  #newBatch(lane: Lane, messages: readonly QueuedMessage[]): Batch {
    let itemBytes = 0;
    for (const message of messages) itemBytes += message.bytes;
    const batch: Batch = {
      lane,
      messages,
      bytes: arrayBytes(messages.length, itemBytes),
      body: undefined,
      attempts: 0,
      firstAttemptAt: undefined,
      owned: true,
    };
    // Registered now, not when sent, so a close() deadline finds the second half of a split too.
    lane.batches.add(batch);
    return batch;
  }

  async #encode(batch: Batch): Promise<Uint8Array> {
    const json = `[${batch.messages.map((message) => message.json).join(',')}]`;
    const raw = Buffer.from(json, 'utf8');
    return batch.lane.gzip ? gzip(raw) : raw;
  }

  /** Sends one batch until it is delivered, refused, split, or given up. Never rejects. */
  async #deliver(batch: Batch): Promise<void> {
    const { lane } = batch;
    const { clock } = this.#options;
    try {
      for (;;) {
        if (!batch.owned) return;
        batch.body ??= await this.#encode(batch);
        if (!batch.owned) return;
        batch.attempts += 1;
        batch.firstAttemptAt ??= clock.now();
        this.#requests += 1;
        let outcome: ResponseOutcome;
        let status = 0;
        let retryAfterMs: number | undefined;
        try {
          const response = await this.#send({
            url: lane.url,
            headers: lane.headers,
            body: batch.body,
            timeoutMs: this.#options.requestTimeoutMs,
            signal: this.#abort.signal,
          });
          status = response.status;
          outcome = interpretResponse(lane.endpoint, response);
          if (outcome.type === 'retry') retryAfterMs = parseRetryAfter(response.retryAfter, clock.now());
        } catch (error) {
          outcome = { type: 'retry', detail: describeTransportError(error) };
        }
        // A close() deadline may have counted this batch while the request was out.
        if (!batch.owned) return;
        switch (outcome.type) {
          case 'delivered':
            this.#release(batch, 'delivered');
            this.#emitter.emit('delivered', {
              endpoint: lane.endpoint,
              count: batch.messages.length,
              bytes: batch.bytes,
              attempt: batch.attempts,
            });
            return;
          case 'partial':
            this.#partial(batch, outcome.failed);
            return;
          case 'rejected':
            this.#release(batch, 'rejected');
            this.#report(
              new IdstitchError(
                'rejected_by_mixpanel',
                `Mixpanel refused ${batch.messages.length} ${KIND_NOUN[lane.endpoint]} on /${lane.endpoint} ` +
                  `(${outcome.detail}); they were dropped and will not be retried`,
                {
                  details: {
                    endpoint: lane.endpoint,
                    status,
                    count: batch.messages.length,
                    response: outcome.detail,
                  },
                },
              ),
            );
            return;
          case 'unauthorized':
            this.#release(batch, 'rejected', 'unauthorized');
            this.#pause(lane, status, outcome.detail);
            return;
          case 'too_large':
            await this.#split(batch, outcome.detail);
            return;
          case 'retry':
            if (!(await this.#backoff(batch, outcome.detail, retryAfterMs))) return;
            break;
        }
      }
    } catch (error) {
      // Defensive: a fault of our own (gzip failing, say) must still account for every message.
      if (batch.owned) {
        this.#release(batch, 'retries_exhausted');
        this.#report(
          new IdstitchError(
            'delivery_failed',
            `could not send ${batch.messages.length} ${KIND_NOUN[lane.endpoint]} to /${lane.endpoint}`,
            { cause: error, details: { endpoint: lane.endpoint, count: batch.messages.length } },
          ),
        );
      }
    } finally {
      lane.batches.delete(batch);
    }
  }

  /** Waits before the next attempt; false when the batch was given up instead. */
  async #backoff(batch: Batch, detail: string, retryAfterMs: number | undefined): Promise<boolean> {
    const { lane } = batch;
    const { retry, clock, random } = this.#options;
    const delay = retryDelay(batch.attempts, retry, random, retryAfterMs);
    const elapsed = clock.now() - (batch.firstAttemptAt ?? clock.now());
    const count = batch.messages.length;
    if (batch.attempts > retry.maxRetries || elapsed + delay > retry.maxDurationMs) {
      this.#release(batch, 'retries_exhausted');
      this.#report(
        new IdstitchError(
          'retries_exhausted',
          `gave up sending ${count} ${KIND_NOUN[lane.endpoint]} to /${lane.endpoint} after ${batch.attempts} ` +
            `attempts over ${Math.round(elapsed / 1000)} s; last failure: ${detail}`,
          {
            details: {
              endpoint: lane.endpoint,
              count,
              attempts: batch.attempts,
              elapsedMs: elapsed,
              lastFailure: detail,
            },
          },
        ),
      );
      return false;
    }
    this.#retried += count;
    this.#emitter.emit('retry', {
      endpoint: lane.endpoint,
      count,
      attempt: batch.attempts,
      delayMs: delay,
      cause: detail,
      retryAfter: retryAfterMs !== undefined,
    });
    lane.backingOff += 1;
    try {
      await clock.sleep(delay, this.#abort.signal);
    } finally {
      lane.backingOff -= 1;
    }
    // The endpoint is open again: other slots may start while this batch retries.
    this.#pump(lane);
    return batch.owned;
  }

  /** Strict-mode partial success: the named records were refused, everything else was ingested. */
  #partial(batch: Batch, failed: readonly FailedRecord[]): void {
    const { lane, messages } = batch;
    let byInsertId: Map<string, number> | undefined;
    const refused = new Map<number, FailedRecord>();
    for (const record of failed) {
      let index = record.index;
      const indexed = index === undefined ? undefined : messages[index];
      if (!indexed || (record.insertId !== undefined && indexed.insertId !== record.insertId)) {
        byInsertId ??= new Map(messages.map((message, i) => [message.insertId ?? '', i]));
        index = record.insertId === undefined ? undefined : byInsertId.get(record.insertId);
      }
      if (index !== undefined && !refused.has(index)) refused.set(index, record);
    }
    batch.owned = false;
    const delivered = messages.filter((_, i) => !refused.has(i));
    this.#settle(delivered, 'delivered', lane.endpoint);
    if (delivered.length > 0) {
      this.#emitter.emit('delivered', {
        endpoint: lane.endpoint,
        count: delivered.length,
        bytes: batch.bytes,
        attempt: batch.attempts,
      });
    }
    this.#settle(
      [...refused.keys()].map((i) => messages[i] as QueuedMessage),
      'rejected',
      lane.endpoint,
    );
    for (const [index, record] of refused) {
      const insertId = record.insertId ?? messages[index]?.insertId;
      this.#emitter.emit('failedRecord', {
        endpoint: lane.endpoint,
        index,
        insertId,
        field: record.field,
        message: record.message,
      });
      this.#report(
        new IdstitchError(
          'rejected_by_mixpanel',
          `Mixpanel refused event ${insertId ?? `#${index}`} on /${lane.endpoint}: ${record.field}: ${record.message}`,
          {
            details: {
              endpoint: lane.endpoint,
              index,
              insertId,
              field: record.field,
              message: record.message,
            },
          },
        ),
      );
    }
  }

  /** 413: halve and resend; a single message that is still too large is dropped. */
  async #split(batch: Batch, detail: string): Promise<void> {
    const { lane, messages } = batch;
    if (messages.length === 1) {
      this.#release(batch, 'rejected');
      this.#report(
        new IdstitchError(
          'message_too_large',
          `Mixpanel refused a single message of ${batch.bytes} bytes on /${lane.endpoint} as too large (${detail}); ` +
            'it was dropped',
          { details: { endpoint: lane.endpoint, bytes: batch.bytes, response: detail } },
        ),
      );
      return;
    }
    batch.owned = false;
    const middle = Math.ceil(messages.length / 2);
    const first = this.#newBatch(lane, messages.slice(0, middle));
    const second = this.#newBatch(lane, messages.slice(middle));
    await this.#deliver(first);
    await this.#deliver(second);
  }

  #pause(lane: Lane, status: number, detail: string): void {
    const resumeAt = this.#options.clock.now() + this.#options.authPauseMs;
    lane.pausedUntil = Math.max(lane.pausedUntil, resumeAt);
    this.#settle(lane.pending.drain(), 'rejected', lane.endpoint, 'unauthorized');
    this.#emitter.emit('paused', { endpoint: lane.endpoint, status, resumeAt });
    if (this.#unauthorizedReported.has(lane.endpoint)) return;
    this.#unauthorizedReported.add(lane.endpoint);
    this.#report(
      new IdstitchError(
        'unauthorized',
        `Mixpanel refused the credentials on /${lane.endpoint} (${detail}). ${this.#credentialHint(lane)} ` +
          `Nothing is sent to /${lane.endpoint} for ${Math.round(this.#options.authPauseMs / 1000)} s; ` +
          'messages for it are dropped meanwhile (counted as rejected).',
        { details: { endpoint: lane.endpoint, status, response: detail } },
      ),
    );
  }

  #credentialHint(lane: Lane): string {
    const { baseUrl, projectId, canMerge } = this.#options;
    if (lane.endpoint !== 'import')
      return `Check \`token\` and that \`host\` (${baseUrl.host}) is the project's residency.`;
    if (projectId !== undefined) {
      return (
        `Check serviceAccount.username/secret, that the account is Owner or Admin of project ${projectId}, ` +
        `and that \`host\` (${baseUrl.host}) is the project's residency.`
      );
    }
    return canMerge
      ? `Check \`apiSecret\` and that \`host\` (${baseUrl.host}) is the project's residency.`
      : '/import was called with only the project token; pass serviceAccount + projectId (or apiSecret).';
  }

  // ---------------------------------------------------------------------------------------------
  // Accounting

  /** Counts a message that never entered the queue. */
  #dropNew(
    reason: DropReason,
    endpoint: MixpanelEndpoint | undefined,
    settled?: (outcome: MixpanelMessageOutcome) => void,
    told: MixpanelMessageOutcome = reason,
  ): void {
    this.#dropped[reason] += 1;
    if (reason === 'queue_overflow') this.#overflowDropped += 1;
    this.#emitter.emit('dropped', { reason, count: 1, endpoint });
    if (settled) this.#tell(settled, told);
  }

  #release(batch: Batch, outcome: 'delivered' | DropReason, told: MixpanelMessageOutcome = outcome): void {
    batch.owned = false;
    this.#settle(batch.messages, outcome, batch.lane.endpoint, told);
  }

  /** Calls a message's `settled` callback; its failure is reported, never thrown into delivery. */
  #tell(settled: (outcome: MixpanelMessageOutcome) => void, outcome: MixpanelMessageOutcome): void {
    try {
      settled(outcome);
    } catch (error) {
      this.#report(
        new IdstitchError('hook_failed', 'a write() settled callback threw; delivery went on', {
          cause: error,
          details: { outcome },
        }),
      );
    }
  }

  /** Counts queued messages as delivered or dropped, and wakes the `flush()` calls they complete. */
  #settle(
    messages: readonly QueuedMessage[],
    outcome: 'delivered' | DropReason,
    endpoint: MixpanelEndpoint,
    told: MixpanelMessageOutcome = outcome,
  ): void {
    const count = messages.length;
    if (count === 0) return;
    let bytes = 0;
    for (const message of messages) bytes += message.bytes;
    this.#queued -= count;
    this.#queuedBytes -= bytes;
    if (outcome === 'delivered') {
      this.#delivered += count;
    } else {
      this.#dropped[outcome] += count;
      if (outcome === 'queue_overflow') this.#overflowDropped += count;
      this.#emitter.emit('dropped', { reason: outcome, count, endpoint });
    }
    for (const message of messages) if (message.settled) this.#tell(message.settled, told);
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
        this.#updateKeepAlive();
      }
    }
    if (this.#overflowing && outcome !== 'queue_overflow') this.#maybeStopOverflow();
  }

  /**
   * While someone awaits `flush()` or `close()`, a referenced handle keeps the process alive: every
   * other timer is unref'd, and a script ending in `await sink.flush()` must not exit mid-backoff.
   */
  #updateKeepAlive(): void {
    if (this.#waiters.length > 0 && !this.#keepAlive) {
      this.#keepAlive = setInterval(() => {}, 2 ** 30);
    } else if (this.#waiters.length === 0 && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  #report(error: IdstitchError): void {
    try {
      this.#options.onError(error);
    } catch {
      // A failing error hook must not break tracking, and there is nowhere left to report it.
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Shutdown

  async #close(timeoutMs: number): Promise<void> {
    this.#removeSignalHandlers();
    this.#state = 'closing';
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // Referenced on purpose: the process must stay up until the close has finished or given up.
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
    });
    try {
      for (;;) {
        const target = this.#lastSeq;
        await Promise.race([this.flush(), deadline]);
        // Stop only when a round ended with nothing new written, so the last request's events go too.
        if (timedOut || this.#lastSeq === target) break;
      }
    } finally {
      clearTimeout(timer);
    }
    this.#state = 'closed';
    for (const lane of Object.values(this.#lanes)) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    let undelivered = 0;
    if (timedOut) {
      for (const lane of Object.values(this.#lanes)) {
        const waiting = lane.pending.drain();
        undelivered += waiting.length;
        this.#settle(waiting, 'shutdown_timeout', lane.endpoint);
        for (const batch of lane.batches) {
          if (!batch.owned) continue;
          undelivered += batch.messages.length;
          this.#release(batch, 'shutdown_timeout');
        }
      }
      this.#abort.abort();
      if (undelivered > 0) {
        this.#report(
          new IdstitchError(
            'shutdown_timeout',
            `close() ran out of time after ${timeoutMs} ms; ${undelivered} messages were not delivered`,
            { details: { undelivered, timeoutMs } },
          ),
        );
      }
    }
    this.#updateKeepAlive();
  }

  #onSignal(signal: NodeJS.Signals): void {
    // Removed first, so a second signal gets Node's default behaviour: an impatient operator wins.
    this.#removeSignalHandlers();
    const closing = this.close();
    const closings = signalClosings();
    closings.add(closing);
    void closing.then(() => {
      closings.delete(closing);
      // Another sink may still be flushing. If the app listens too, ending the process is its call;
      // otherwise finish what the signal started, with Node's default behaviour.
      if (closings.size === 0 && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }

  #removeSignalHandlers(): void {
    for (const [signal, handler] of this.#signalHandlers) process.removeListener(signal, handler);
    this.#signalHandlers.clear();
  }
}

function safeKind(message: unknown): string {
  const kind = (message as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind.slice(0, 20) : typeof message;
}

function describeKind(message: unknown): string {
  const kind = safeKind(message);
  if (kind === 'profile') return 'profile update';
  if (kind === 'group') return 'group update';
  if (kind === 'event') {
    const name = (message as { payload?: { event?: unknown } }).payload?.event;
    return typeof name === 'string' ? `event "${name.slice(0, 80)}"` : 'event';
  }
  return 'message';
}

function describeTransportError(error: unknown): string {
  if (error instanceof TransportError)
    return error.kind === 'timeout' ? 'timeout' : `network: ${error.message}`;
  return `network: ${error instanceof Error ? error.message : String(error)}`;
}
