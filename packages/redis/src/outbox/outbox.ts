import {
  DROP_REASONS,
  type DropReason,
  IdstitchError,
  MIXPANEL_LIMITS,
  type OutgoingMessage,
  type Sink,
  validateMessage,
} from '@idstitch/core';
import type { Redis } from 'ioredis';
import { backoff, closeRedis, openRedis, retryPause, sleep, whenReady } from '../connection.js';
import { classifyFailure, describeRedisFault, safeRedisUrl } from '../faults.js';
import { BacklogMonitor } from '../stream/backlog.js';
import { encodeMessage } from '../stream/layout.js';
import { OutboxWorker } from '../worker/worker.js';
import { StreamAppender } from './append.js';
import { closeLeftovers } from './close-report.js';
import { mayEvict, readEvictionSettings } from './eviction-risk.js';
import { type RedisOutboxOptions, type RedisOutboxStats, resolveOutboxOptions } from './options.js';

interface Buffered {
  readonly seq: number;
  readonly json: string;
  readonly bytes: number;
}

interface FlushWaiter {
  readonly target: number;
  remaining: number;
  readonly resolve: () => void;
}

/**
 * A {@link Sink} that appends every message to a Redis Stream (the outbox) instead of sending it from
 * this process's memory, so a crash or a deploy loses nothing that was appended. Delivery workers read
 * the stream through a consumer group and send to Mixpanel with the `MixpanelSink` rules, acknowledging
 * an entry only once Mixpanel accepted it; by default one runs in this process.
 *
 * - `write()` validates and serialises, then appends in the background (batched `XADD`s); it never
 *   waits and never throws. While Redis is unreachable messages wait in a bounded local buffer.
 * - `flush()` resolves once everything written before it is appended (or dropped) and, with the
 *   in-process worker, delivered as far as this worker is concerned (see {@link OutboxWorker.flush}).
 * - `close()` appends what is buffered, closes the worker (what it could not deliver stays in the
 *   stream for another worker) and ends the connections.
 *
 * @example
 * ```ts
 * const sink = new RedisOutbox({
 *   redis: process.env.REDIS_URL!,
 *   mixpanel: { token: process.env.MIXPANEL_TOKEN!, serviceAccount, projectId },
 * });
 * app.use(idstitch({ sink, identityStore, cookie: { secret } }));
 * ```
 */
export class RedisOutbox implements Sink {
  readonly #stream: string;
  readonly #redis: Redis;
  readonly #appender: StreamAppender;
  readonly #worker: OutboxWorker | undefined;
  readonly #backlog: BacklogMonitor;
  readonly #maxBuffered: number;
  readonly #maxBufferedBytes: number;
  readonly #appendBatchSize: number;
  readonly #flushTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #onError: (error: IdstitchError) => void;
  #buffer: Buffered[] = [];
  #bufferedBytes = 0;
  #appending: Promise<void> | undefined;
  /** The messages of the append sent and not answered yet. */
  #inFlight: readonly Buffered[] | undefined;
  /** The highest number of an append that was sent and not answered: Redis may have run it. 0: none. */
  #inDoubtUpTo = 0;
  /** close() counted what was left: later answers of an append are not counted again. */
  #settled = false;
  #appendAttempt = 0;
  #lastSeq = 0;
  #waiters: FlushWaiter[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closePromise: Promise<void> | undefined;
  #down = false;
  #downSince = 0;
  #downWaiters: (() => void)[] = [];
  #overflowing = false;
  #overflowDropped = 0;
  #afterCloseReported = false;
  #evictionRiskReported = false;
  readonly #abort = new AbortController();
  #tracked = 0;
  #appended = 0;
  readonly #dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<
    DropReason,
    number
  >;

  /** @throws {IdstitchOptionsError} when an option is missing or invalid; the message names the fix. */
  constructor(options: RedisOutboxOptions) {
    const resolved = resolveOutboxOptions(options);
    const { stream, group, maxStreamLength } = resolved;
    this.#stream = stream;
    this.#maxBuffered = resolved.maxBufferedMessages;
    this.#maxBufferedBytes = resolved.maxBufferedBytes;
    this.#appendBatchSize = resolved.appendBatchSize;
    this.#flushTimeoutMs = resolved.flushTimeoutMs;
    this.#closeTimeoutMs = resolved.closeTimeoutMs;
    this.#onError = resolved.onError;
    this.#backlog = new BacklogMonitor(stream, maxStreamLength, (error) => this.#report(error));

    if (resolved.worker !== false) {
      this.#worker = new OutboxWorker({
        ...resolved.worker.options,
        redis: resolved.redis,
        stream,
        group,
        maxStreamLength,
        mixpanel: resolved.worker.mixpanel,
        onError: (error) => this.#report(error),
      });
    }
    this.#redis = openRedis(resolved.redis, 'outbox', resolved.commandTimeoutMs);
    this.#appender = new StreamAppender(this.#redis, stream, group);
    this.#redis.on('ready', () => {
      void this.#checkEviction();
      if (this.#buffer.length > 0) this.#scheduleAppend();
    });
    this.#worker?.start();
  }

  /** The stream's key. */
  get stream(): string {
    return this.#stream;
  }

  /** The worker running in this process, if any. */
  get worker(): OutboxWorker | undefined {
    return this.#worker;
  }

  /**
   * Accepts one message: validates it (a message Mixpanel would refuse never enters the stream),
   * serialises it once (so every delivery attempt, by any worker, carries the same `$insert_id`), and
   * queues it for appending. Never throws and never waits.
   */
  write(message: OutgoingMessage): void {
    this.#tracked += 1;
    try {
      this.#accept(message);
    } catch (error) {
      this.#dropNew('invalid');
      this.#report(
        new IdstitchError('invalid_message', 'a message could not be serialised and was dropped', {
          cause: error,
        }),
      );
    }
  }

  /** Counts messages the producer dropped before they reached the sink (consent, invalid input). */
  recordDrop(reason: DropReason, count = 1): void {
    if (!DROP_REASONS.includes(reason) || !Number.isInteger(count) || count <= 0) return;
    this.#tracked += count;
    this.#dropped[reason] += count;
  }

  /**
   * Resolves once everything written before the call is appended to the stream (or dropped) and, with
   * the in-process worker, once that worker has delivered what it can read now. While Redis is
   * unreachable it waits at most `flushTimeoutMs`; the messages then stay buffered and keep being
   * retried. Never rejects.
   */
  async flush(): Promise<void> {
    await this.#appendedUpTo(this.#lastSeq, this.#flushTimeoutMs);
    await this.#worker?.flush();
  }

  /**
   * Appends what is buffered and closes the in-process worker, within `timeoutMs` (default
   * `closeTimeoutMs`), also against a frozen Redis; then ends the connections. An append in flight is
   * waited for until the deadline. Messages still buffered at the deadline are dropped and reported:
   * as `in_doubt` when an append of them was sent and not answered (Redis may have them), otherwise as
   * `shutdown_timeout`; `tracked = appended + droppedTotal` holds exactly afterwards. What the worker could not
   * deliver in time is not lost: it stays in the stream for another worker. Later writes are dropped
   * as `after_close`. Calling it again returns the same promise. Never rejects.
   */
  close(timeoutMs: number = this.#closeTimeoutMs): Promise<void> {
    this.#closePromise ??= this.#close(timeoutMs);
    return this.#closePromise;
  }

  /** A snapshot of the counters. */
  stats(): RedisOutboxStats {
    const dropped = { ...this.#dropped };
    return {
      tracked: this.#tracked,
      appended: this.#appended,
      buffered: this.#buffer.length,
      bufferedBytes: this.#bufferedBytes,
      dropped,
      droppedTotal: Object.values(dropped).reduce((sum, n) => sum + n, 0),
      streamLength: this.#backlog.length,
      backlogOver: this.#backlog.over,
      redisDown: this.#down,
      worker: this.#worker?.stats(),
    };
  }

  // ---------------------------------------------------------------------------------------------

  #accept(message: OutgoingMessage): void {
    if (this.#state === 'closed') {
      this.#dropNew('after_close');
      if (!this.#afterCloseReported) {
        this.#afterCloseReported = true;
        this.#report(
          new IdstitchError(
            'after_close',
            'a message was written after the Redis outbox was closed and was dropped; later ones are only ' +
              'counted in stats().dropped.after_close',
          ),
        );
      }
      return;
    }
    const problem = validateMessage(message, Date.now());
    if (problem) {
      this.#dropNew('invalid');
      this.#report(
        new IdstitchError(
          'invalid_message',
          `${message.kind} dropped before the outbox: ${problem.field}: ${problem.message}`,
          { details: { kind: message.kind, field: problem.field, problem: problem.message } },
        ),
      );
      return;
    }
    const json = encodeMessage(message);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > MIXPANEL_LIMITS.maxMessageBytes) {
      this.#dropNew('invalid');
      this.#report(
        new IdstitchError(
          'message_too_large',
          `${message.kind} dropped before the outbox: ${bytes} bytes serialised, the limit is ` +
            `${MIXPANEL_LIMITS.maxMessageBytes}`,
          { details: { kind: message.kind, bytes, limit: MIXPANEL_LIMITS.maxMessageBytes } },
        ),
      );
      return;
    }
    if (this.#buffer.length >= this.#maxBuffered || this.#bufferedBytes + bytes > this.#maxBufferedBytes) {
      this.#dropNew('queue_overflow');
      if (!this.#overflowing) {
        this.#overflowing = true;
        this.#overflowDropped = 0;
        this.#report(
          new IdstitchError(
            'queue_overflow',
            `the outbox's local buffer is full (${this.#buffer.length} messages waiting for Redis); new ` +
              'messages are dropped until Redis takes them',
            { details: { state: 'started', maxBufferedMessages: this.#maxBuffered } },
          ),
        );
      }
      return;
    }
    this.#lastSeq += 1;
    this.#buffer.push({ seq: this.#lastSeq, json, bytes });
    this.#bufferedBytes += bytes;
    this.#scheduleAppend();
  }

  #scheduleAppend(): void {
    if (this.#appending || this.#state === 'closed') return;
    this.#appending = this.#appendLoop().finally(() => {
      this.#appending = undefined;
      // Written while the last round trip was out, or left by a failure that ended the loop.
      if (this.#buffer.length > 0 && this.#state !== 'closed' && !this.#down) this.#scheduleAppend();
    });
  }

  async #appendLoop(): Promise<void> {
    // Let the rest of this tick's writes join the first round trip.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await whenReady(this.#redis, 2000);
    while (this.#buffer.length > 0 && this.#state !== 'closed') {
      const chunk = this.#buffer.slice(0, this.#appendBatchSize);
      let failure: unknown;
      this.#inFlight = chunk;
      try {
        const { handled, length, error } = await this.#appender.append(chunk);
        if (this.#settled) return;
        // Redis answered: the script says what is in the stream, including what an earlier attempt
        // in doubt appended (it ran before this one, on the same connection, or never will).
        this.#inDoubtUpTo = 0;
        failure = error;
        this.#backlog.observe(length);
        if (handled > 0) {
          const appended = this.#buffer.splice(0, handled);
          for (const item of appended) this.#bufferedBytes -= item.bytes;
          this.#appended += appended.length;
          this.#settle(appended);
          this.#maybeStopOverflow();
        }
      } catch (error) {
        if (this.#settled) return;
        failure = error;
        if (classifyFailure(error) === 'in_doubt') {
          this.#inDoubtUpTo = Math.max(this.#inDoubtUpTo, chunk.at(-1)?.seq ?? 0);
        }
      } finally {
        this.#inFlight = undefined;
      }
      if (failure === undefined) {
        this.#appendAttempt = 0;
        this.#up();
        continue;
      }
      this.#appendAttempt += 1;
      this.#failed(failure);
      await retryPause(this.#redis, backoff(this.#appendAttempt, 100, 2000), this.#abort.signal);
    }
  }

  /**
   * Resolves when every message up to `target` is appended or dropped, or once Redis has been
   * unreachable for `outageMs` straight, or at `deadline` (close()). A slow but working Redis is waited for.
   */
  async #appendedUpTo(target: number, outageMs: number, deadline = Number.POSITIVE_INFINITY): Promise<void> {
    const remaining = this.#buffer.filter((item) => item.seq <= target).length;
    if (remaining === 0) return;
    let finished = false;
    let waiter!: FlushWaiter;
    const done = new Promise<void>((resolve) => {
      waiter = {
        target,
        remaining,
        resolve: () => {
          finished = true;
          resolve();
        },
      };
    });
    this.#waiters.push(waiter);
    this.#scheduleAppend();
    const hardStop = Number.isFinite(deadline)
      ? sleep(Math.max(0, deadline - Date.now()), this.#abort.signal)
      : new Promise<void>(() => {});
    let stopped = false;
    void hardStop.then(() => {
      stopped = true;
    });
    while (!finished && !stopped) {
      await Promise.race([done, hardStop, this.#untilDown()]);
      if (finished || stopped) break;
      const waitMs = this.#downSince + outageMs - Date.now();
      if (waitMs <= 0) break;
      await Promise.race([done, hardStop, sleep(waitMs, this.#abort.signal)]);
      if (!finished && this.#down && Date.now() - this.#downSince >= outageMs) break;
    }
    this.#waiters = this.#waiters.filter((other) => other !== waiter);
  }

  /** Resolves when Redis is (or becomes) unreachable. */
  #untilDown(): Promise<void> {
    if (this.#down) return Promise.resolve();
    return new Promise((resolve) => this.#downWaiters.push(resolve));
  }

  #settle(items: readonly Buffered[]): void {
    if (this.#waiters.length === 0) return;
    for (const waiter of this.#waiters) {
      for (const item of items) if (item.seq <= waiter.target) waiter.remaining -= 1;
    }
    const done = this.#waiters.filter((waiter) => waiter.remaining <= 0);
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((waiter) => waiter.remaining > 0);
    for (const waiter of done) waiter.resolve();
  }

  #dropNew(reason: DropReason): void {
    this.#dropped[reason] += 1;
    if (reason === 'queue_overflow') this.#overflowDropped += 1;
  }

  #maybeStopOverflow(): void {
    if (!this.#overflowing || this.#buffer.length > this.#maxBuffered / 2) return;
    this.#overflowing = false;
    this.#report(
      new IdstitchError(
        'queue_overflow',
        `the outbox's local buffer has room again; ${this.#overflowDropped} messages were dropped while it was full`,
        { details: { state: 'stopped', dropped: this.#overflowDropped } },
      ),
    );
  }

  async #close(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    this.#state = 'closing';
    if (this.#buffer.length > 0) {
      this.#scheduleAppend();
      await this.#appendedUpTo(this.#lastSeq, timeoutMs, deadline);
    }
    await this.#worker?.close(remaining());
    this.#state = 'closed';
    this.#abort.abort();
    // The append in flight: its answer says what landed, so it is waited for, until the deadline.
    if (this.#appending) await Promise.race([this.#appending, sleep(remaining())]);
    this.#settled = true;
    const inDoubtUpTo = Math.max(this.#inDoubtUpTo, this.#inFlight?.at(-1)?.seq ?? 0);
    const left = this.#buffer.splice(0);
    this.#bufferedBytes = 0;
    // Numbered in order and appended from the front, so the messages in doubt lead the rest.
    const inDoubt = left.filter((item) => item.seq <= inDoubtUpTo).length;
    const notSent = left.length - inDoubt;
    this.#dropped.in_doubt += inDoubt;
    this.#dropped.shutdown_timeout += notSent;
    this.#settle(left);
    for (const error of closeLeftovers(inDoubt, notSent, timeoutMs)) this.#report(error);
    await closeRedis(this.#redis, deadline);
  }

  /** Reports, once, a Redis that may evict the outbox's keys when it is full (see {@link mayEvict}). */
  async #checkEviction(): Promise<void> {
    if (this.#evictionRiskReported) return;
    const settings = await readEvictionSettings(this.#redis);
    if (!settings || !mayEvict(settings) || this.#evictionRiskReported) return;
    this.#evictionRiskReported = true;
    const url = safeRedisUrl(this.#redis);
    this.#report(
      new IdstitchError(
        'delivery_failed',
        `Redis at ${url} has a maxmemory and maxmemory-policy ${settings.policy}: when it is full it may evict ` +
          `the outbox stream ${this.#stream} (undelivered messages lost without a trace) or the append markers ` +
          '(a retried append, a profile $add, then lands twice). Set maxmemory-policy noeviction on the Redis ' +
          'that holds the outbox, and keep the identity store on another one if it needs eviction.',
        {
          details: {
            state: 'eviction_risk',
            stream: this.#stream,
            maxmemoryPolicy: settings.policy,
            maxmemory: settings.maxmemory,
            redis: url,
          },
        },
      ),
    );
  }

  #failed(error: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.#downSince = Date.now();
    for (const wake of this.#downWaiters.splice(0)) wake();
    const fault = describeRedisFault(this.#redis, error);
    this.#report(
      new IdstitchError(
        'delivery_failed',
        `cannot append to the outbox stream ${this.#stream}: ${fault.description}; messages wait in this ` +
          `process (at most ${this.#maxBuffered}) and are appended when Redis takes them again`,
        { cause: fault.error, details: { state: 'down', stream: this.#stream, fault: fault.kind } },
      ),
    );
  }

  #up(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#report(
      new IdstitchError('delivery_failed', `the outbox stream ${this.#stream} takes messages again`, {
        details: { state: 'recovered', stream: this.#stream, buffered: this.#buffer.length },
      }),
    );
  }

  #report(error: IdstitchError): void {
    try {
      this.#onError(error);
    } catch {
      // A failing hook must not break tracking.
    }
  }
}
