import { IdstitchError } from '../../errors.js';
import type { Accounting } from './accounting.js';
import type { SinkState } from './admission.js';
import { type Batch, KIND_NOUN, type Lane, newBatch } from './lane.js';
import type { MixpanelEndpoint, ResolvedMixpanelOptions } from './options.js';
import type { QueuedMessage } from './queue.js';
import { type FailedRecord, interpretResponse, type ResponseOutcome } from './response.js';
import { parseRetryAfter, retryDelay } from './retry.js';
import type { Spooling } from './spooling.js';
import { encodeBody, fetchSend, type HttpSend, TransportError } from './transport.js';

/**
 * The way out: starts batches when they are ready, sends them, and turns each response into an
 * outcome: delivered, partly refused (strict mode), refused, credentials refused (the endpoint
 * pauses), too large (the batch splits), or retried after a backoff.
 */
export class Delivery {
  readonly #options: ResolvedMixpanelOptions;
  readonly #accounts: Accounting;
  readonly #state: () => SinkState;
  readonly #send: HttpSend = fetchSend;
  /** Aborted when `close()` runs out of time: cancels requests in flight and backoff waits. */
  readonly #abort = new AbortController();
  readonly #unauthorizedReported = new Set<MixpanelEndpoint>();
  /** Set when a spool is configured. */
  spooling: Spooling | undefined;

  constructor(options: ResolvedMixpanelOptions, accounts: Accounting, state: () => SinkState) {
    this.#options = options;
    this.#accounts = accounts;
    this.#state = state;
  }

  /** Cancels requests in flight and backoff waits (a `close()` deadline passed). */
  abort(): void {
    this.#abort.abort();
  }

  /** Starts as many batches as the endpoint's slots, backoff state and batching rules allow. */
  pump(lane: Lane): void {
    const state = this.#state();
    if (state === 'closed' || this.spooling?.opening) return;
    const { concurrency, maxBatchMessages, maxBatchBytes } = this.#options;
    while (lane.slots < concurrency && lane.backingOff === 0 && lane.pending.length > 0) {
      const head = lane.pending.peek() as QueuedMessage;
      const ready =
        lane.due ||
        state === 'closing' ||
        head.seq <= lane.flushTarget ||
        lane.pending.hasFullBatch(maxBatchMessages, maxBatchBytes);
      if (!ready) break;
      const batch = newBatch(lane, lane.pending.take(maxBatchMessages, maxBatchBytes));
      lane.slots += 1;
      void this.#deliver(batch).finally(() => {
        lane.slots -= 1;
        this.pump(lane);
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
        this.pump(lane);
      }, this.#options.flushIntervalMs);
      // An idle sink must never be what keeps the process alive.
      (lane.timer as { unref?(): void }).unref?.();
    }
  }

  /** Sends one batch until it is delivered, refused, split, or given up. Never rejects. */
  async #deliver(batch: Batch): Promise<void> {
    const { lane } = batch;
    const { clock } = this.#options;
    const accounts = this.#accounts;
    try {
      for (;;) {
        if (!batch.owned) return;
        batch.body ??= await encodeBody(batch.messages, batch.bytes, lane.gzip);
        // With a spool, a profile/group update is marked as being sent, durably, before it goes out.
        if (this.spooling) await this.spooling.beforeSend(lane.endpoint, batch.messages);
        if (!batch.owned) return;
        batch.attempts += 1;
        batch.firstAttemptAt ??= clock.now();
        accounts.requests += 1;
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
          // Refused before connecting: Mixpanel cannot have it.
          if (error instanceof TransportError && error.code === 'ECONNREFUSED') {
            this.spooling?.notSent(lane.endpoint, batch.messages);
          }
        }
        // A retryable status means Mixpanel answered without ingesting.
        if (outcome.type === 'retry' && status !== 0) this.spooling?.notSent(lane.endpoint, batch.messages);
        // A close() deadline may have counted this batch while the request was out.
        if (!batch.owned) return;
        switch (outcome.type) {
          case 'delivered':
            accounts.release(batch, 'delivered');
            accounts.emitter.emit('delivered', {
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
            accounts.release(batch, 'rejected');
            accounts.report(
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
            accounts.release(batch, 'rejected', 'unauthorized');
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
        accounts.release(batch, 'retries_exhausted');
        accounts.report(
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
    const accounts = this.#accounts;
    const delay = retryDelay(batch.attempts, retry, random, retryAfterMs);
    const elapsed = clock.now() - (batch.firstAttemptAt ?? clock.now());
    const count = batch.messages.length;
    // Messages safe on disk are retried without limit: giving up would only lose them.
    const bounded = !this.spooling?.durable(batch.messages);
    if (bounded && (batch.attempts > retry.maxRetries || elapsed + delay > retry.maxDurationMs)) {
      accounts.release(batch, 'retries_exhausted');
      accounts.report(
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
    accounts.retried += count;
    accounts.emitter.emit('retry', {
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
    this.pump(lane);
    return batch.owned;
  }

  /** Strict-mode partial success: the named records were refused, everything else was ingested. */
  #partial(batch: Batch, failed: readonly FailedRecord[]): void {
    const { lane, messages } = batch;
    const accounts = this.#accounts;
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
    if (refused.size === 0) {
      // Mixpanel said records failed but named none of this batch: nothing tells which were ingested,
      // so counting the batch delivered would hide a failure. It is dropped as refused, and reported.
      const [first] = failed;
      accounts.release(batch, 'rejected');
      accounts.report(
        new IdstitchError(
          'rejected_by_mixpanel',
          `Mixpanel refused records of a batch of ${messages.length} ${KIND_NOUN[lane.endpoint]} on ` +
            `/${lane.endpoint} but named none of them (${failed.length} failed_records, the first: ` +
            `${first?.field}: ${first?.message}); the batch was dropped and will not be retried`,
          {
            details: {
              endpoint: lane.endpoint,
              count: messages.length,
              failedRecords: failed.length,
              field: first?.field,
              message: first?.message,
            },
          },
        ),
      );
      return;
    }
    batch.owned = false;
    const delivered = messages.filter((_, i) => !refused.has(i));
    accounts.settle(delivered, 'delivered', lane.endpoint);
    if (delivered.length > 0) {
      accounts.emitter.emit('delivered', {
        endpoint: lane.endpoint,
        count: delivered.length,
        bytes: batch.bytes,
        attempt: batch.attempts,
      });
    }
    accounts.settle(
      [...refused.keys()].map((i) => messages[i] as QueuedMessage),
      'rejected',
      lane.endpoint,
    );
    for (const [index, record] of refused) {
      const insertId = record.insertId ?? messages[index]?.insertId;
      accounts.emitter.emit('failedRecord', {
        endpoint: lane.endpoint,
        index,
        insertId,
        field: record.field,
        message: record.message,
      });
      accounts.report(
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
      this.#accounts.release(batch, 'rejected');
      this.#accounts.report(
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
    const first = newBatch(lane, messages.slice(0, middle));
    const second = newBatch(lane, messages.slice(middle));
    await this.#deliver(first);
    await this.#deliver(second);
  }

  /** 401/403: a configuration error, reported once; the endpoint sends nothing for `authPauseMs`. */
  #pause(lane: Lane, status: number, detail: string): void {
    const accounts = this.#accounts;
    const resumeAt = this.#options.clock.now() + this.#options.authPauseMs;
    lane.pausedUntil = Math.max(lane.pausedUntil, resumeAt);
    accounts.settle(lane.pending.drain(), 'rejected', lane.endpoint, 'unauthorized');
    accounts.emitter.emit('paused', { endpoint: lane.endpoint, status, resumeAt });
    if (this.#unauthorizedReported.has(lane.endpoint)) return;
    this.#unauthorizedReported.add(lane.endpoint);
    accounts.report(
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
}

function describeTransportError(error: unknown): string {
  if (error instanceof TransportError)
    return error.kind === 'timeout' ? 'timeout' : `network: ${error.message}`;
  return `network: ${error instanceof Error ? error.message : String(error)}`;
}
