import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  IdstitchError,
  IdstitchOptionsError,
  type MixpanelMessageOutcome,
  MixpanelSink,
  type MixpanelSinkOptions,
  type MixpanelSinkStats,
} from '@idstitch/core';
import type { Redis } from 'ioredis';
import {
  backoff,
  closeRedis,
  describeRedisFault,
  openRedis,
  type RedisConnection,
  RedisOutage,
  reportSafely,
  retryPause,
  sleep,
  whenReady,
} from './connection.js';
import { nonEmptyName, optionalFunction, positiveInteger } from './options.js';
import {
  BacklogMonitor,
  decodeMessage,
  ensureGroup,
  entriesOfRead,
  isNoGroup,
  type OutboxStreamOptions,
  resolveStream,
  type StreamEntry,
} from './stream.js';

export interface OutboxWorkerOptions extends OutboxStreamOptions {
  /** Where Redis is: a `redis://` URL, ioredis options, or an ioredis client (duplicated, never used). */
  redis: RedisConnection;
  /**
   * How to deliver: the options of a {@link MixpanelSink} (token, credentials, host, batching, retry).
   * The worker delivers through a `MixpanelSink`, so batching, gzip, retries with backoff and
   * `Retry-After`, strict-mode partial success, 401/403 pauses and 413 splits follow the same rules
   * as without Redis. `handleSignals` is ignored: the worker's owner closes it.
   */
  mixpanel: MixpanelSinkOptions;
  /** This worker's name in the consumer group. Default `<hostname>-<pid>-<random>`, unique per start. */
  consumer?: string;
  /**
   * An entry read by a worker and not acknowledged for this long is taken over by another worker
   * (`XAUTOCLAIM`): that is how the entries of a crashed worker get delivered. A live worker renews
   * its entries well before this, however long Mixpanel keeps it retrying. Default 60 000 ms.
   */
  claimIdleMs?: number;
  /** How often to look for entries to take over. Default `claimIdleMs / 2`, at most 30 s. */
  claimIntervalMs?: number;
  /** Entries read per `XREADGROUP`. Default 500. */
  readCount?: number;
  /** How long one read waits for new entries, in ms. Default 2000. */
  blockMs?: number;
  /**
   * Entries this worker holds at once (read and not yet acknowledged); reading pauses above it.
   * Default 5000.
   */
  maxInFlight?: number;
  /** Serialised bytes this worker holds at once; reading pauses above it. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** A Redis command not answered within this fails (and is retried). Default 5000 ms. */
  commandTimeoutMs?: number;
  /** Timeout of `close()` when called without one. Default 10 000 ms. */
  closeTimeoutMs?: number;
  /**
   * Receives every fault: Redis unreachable and back (`delivery_failed` with `details.state`), damaged
   * entries, a stream over `maxStreamLength` (`queue_overflow`), and everything the Mixpanel sink
   * reports. Default: `console.warn` of the message.
   */
  onError?: (error: IdstitchError) => void;
}

/** Counters of an {@link OutboxWorker}. */
export interface OutboxWorkerStats {
  /** New entries read from the stream. */
  read: number;
  /** Entries taken over from another (dead or stuck) consumer, or from this one after a failure. */
  claimed: number;
  /** Entries Mixpanel accepted; acknowledged and deleted from the stream. */
  delivered: number;
  /** Entries Mixpanel refused for good, or damaged; acknowledged and deleted (and reported). */
  rejected: number;
  /** Entries given up for now (retries ran out, shutdown, credentials refused); left pending, claimed again later. */
  released: number;
  /** Entries acknowledged (`XACK` + `XDEL`). */
  acked: number;
  /** Entries held right now: handed to the sink or waiting for their acknowledgement. */
  inFlight: number;
  /** The stream's length at the last check, undelivered entries included. */
  streamLength: number | undefined;
  /** Whether the stream is over `maxStreamLength`. */
  backlogOver: boolean;
  /** Whether the last Redis command failed. */
  redisDown: boolean;
  /** The Mixpanel sink's own counters. */
  sink: MixpanelSinkStats;
}

interface Held {
  bytes: number;
}

type WorkerState = 'idle' | 'running' | 'closing' | 'closed';

const KEPT_FOR_RETRY: ReadonlySet<MixpanelMessageOutcome> = new Set([
  'retries_exhausted',
  'shutdown_timeout',
  'queue_overflow',
  'after_close',
  'unauthorized',
]);

/**
 * Delivers the outbox: reads the stream through a consumer group, hands the messages to a
 * {@link MixpanelSink}, and acknowledges (`XACK`, then `XDEL`) an entry only once Mixpanel accepted it
 * or refused it for good. Entries a dead worker left pending are taken over after `claimIdleMs`
 * (`XAUTOCLAIM`), so delivery is at-least-once; a message delivered twice carries the same
 * `$insert_id`, and Mixpanel keeps one.
 *
 * Runs inside each app instance (the {@link RedisOutbox} default) or as its own process
 * (`idstitch-outbox-worker`); start more of them to deliver faster.
 */
export class OutboxWorker {
  readonly #stream: string;
  readonly #group: string;
  readonly #consumer: string;
  readonly #claimIdleMs: number;
  readonly #claimIntervalMs: number;
  readonly #readCount: number;
  readonly #blockMs: number;
  readonly #maxInFlight: number;
  readonly #maxInFlightBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #onError: (error: IdstitchError) => void;
  readonly #sink: MixpanelSink;
  /** Blocking reads only. */
  readonly #reader: Redis;
  /** Everything else: acknowledgements, claims, heartbeats. */
  readonly #redis: Redis;
  readonly #backlog: BacklogMonitor;
  readonly #held = new Map<string, Held>();
  #heldBytes = 0;
  #toAck: string[] = [];
  #acking: Promise<void> | undefined;
  #ackAttempt = 0;
  #state: WorkerState = 'idle';
  #readLoop: Promise<void> | undefined;
  #claiming: Promise<void> | undefined;
  #claimTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #groupReady = false;
  #pausedUntil = 0;
  readonly #outage = new RedisOutage((error) => this.#report(error));
  #roomWaiters: (() => void)[] = [];
  #drainWaiters: { after: number; resolve: (complete: boolean) => void }[] = [];
  /** Number of the read in progress or last made, for {@link OutboxWorker.flush}. */
  #readSeq = 0;
  /** Whether the read loop is in a blocking read, which `CLIENT UNBLOCK` can end early. */
  #blocking = false;
  /** The reader connection's `CLIENT ID`; forgotten when it reconnects. */
  #readerId: number | undefined;
  #closePromise: Promise<void> | undefined;
  readonly #abort = new AbortController();
  readonly #counts = { read: 0, claimed: 0, delivered: 0, rejected: 0, released: 0, acked: 0 };

  /** @throws {IdstitchOptionsError} when an option is invalid; the message names the fix. */
  constructor(options: OutboxWorkerOptions) {
    if (options === null || typeof options !== 'object') {
      throw new IdstitchOptionsError(
        'options',
        'must be an object',
        "Pass new OutboxWorker({ redis, mixpanel: { token: '…' } }).",
      );
    }
    if (options.mixpanel === null || typeof options.mixpanel !== 'object') {
      throw new IdstitchOptionsError(
        'mixpanel',
        'is required: the worker delivers to Mixpanel with these MixpanelSink options',
        'Pass mixpanel: { token, serviceAccount, projectId } (the same options as new MixpanelSink()).',
      );
    }
    const { stream, group, maxStreamLength } = resolveStream(options);
    this.#stream = stream;
    this.#group = group;
    this.#consumer = nonEmptyName(
      options.consumer,
      'consumer',
      `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    );
    this.#claimIdleMs = positiveInteger(options.claimIdleMs, 'claimIdleMs', 60_000, 100);
    this.#claimIntervalMs = positiveInteger(
      options.claimIntervalMs,
      'claimIntervalMs',
      Math.min(Math.ceil(this.#claimIdleMs / 2), 30_000),
      10,
    );
    this.#readCount = positiveInteger(options.readCount, 'readCount', 500, 1, 10_000);
    this.#blockMs = positiveInteger(options.blockMs, 'blockMs', 2000, 1, 60_000);
    this.#maxInFlight = positiveInteger(options.maxInFlight, 'maxInFlight', 5000);
    this.#maxInFlightBytes = positiveInteger(options.maxInFlightBytes, 'maxInFlightBytes', 8 * 1024 * 1024);
    this.#closeTimeoutMs = positiveInteger(options.closeTimeoutMs, 'closeTimeoutMs', 10_000, 0);
    const commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 5000);
    this.#onError = optionalFunction(options.onError, 'onError') ?? ((error) => console.warn(error.message));
    this.#backlog = new BacklogMonitor(stream, maxStreamLength, (error) => this.#report(error));

    this.#sink = new MixpanelSink({
      // The sink must hold at least what the worker may hand it, or it would drop for overflow.
      maxQueueMessages: Math.max(this.#maxInFlight, 1),
      maxQueueBytes: Math.max(this.#maxInFlightBytes * 2, 1024),
      ...options.mixpanel,
      // The Redis stream is the durable queue: no disk spool behind it (nor its production hint).
      spool: false,
      handleSignals: false,
      onError: (error) => this.#report(kept(error)),
    });
    this.#sink.on('paused', ({ resumeAt }) => {
      this.#pausedUntil = Math.max(this.#pausedUntil, resumeAt);
    });
    this.#redis = openRedis(options.redis, 'outbox-worker', commandTimeoutMs);
    // A blocking read may legitimately take blockMs before it answers.
    this.#reader = openRedis(options.redis, 'outbox-reader', this.#blockMs + commandTimeoutMs);
    this.#reader.on('close', () => {
      this.#readerId = undefined;
    });
  }

  /** This worker's name in the consumer group. */
  get consumer(): string {
    return this.#consumer;
  }

  /** The stream it delivers. */
  get stream(): string {
    return this.#stream;
  }

  /** Starts reading, claiming and delivering. Calling it again does nothing. */
  start(): this {
    if (this.#state !== 'idle') return this;
    this.#state = 'running';
    this.#readLoop = this.#read();
    this.#claimTimer = setInterval(() => void this.#claim(), this.#claimIntervalMs);
    this.#claimTimer.unref();
    // Renew the entries this worker holds well before another worker could take them over.
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), Math.ceil(this.#claimIdleMs / 3));
    this.#heartbeatTimer.unref();
    void this.#claim();
    return this;
  }

  /**
   * Reads every entry available to this worker now, then resolves once they (and everything it
   * already held) are delivered or definitively failed, and acknowledged. Entries another worker
   * holds are that worker's to deliver. Never rejects; while Redis is unreachable it does not wait
   * for it.
   */
  async flush(): Promise<void> {
    for (let round = 0; round < 1000; round += 1) {
      // The read loop reads what is there without blocking, until the stream gives no more.
      const complete = this.#state === 'running' ? await this.#drain() : true;
      await this.#claiming;
      await this.#sink.flush();
      await this.#ackSettled();
      if (complete || this.#outage.down || this.#state !== 'running') return;
    }
  }

  /**
   * Stops reading, delivers what it holds within `timeoutMs`, acknowledges what was delivered, and ends
   * its connections. What could not be delivered in time stays pending in the stream, and another
   * worker takes it over after `claimIdleMs`: nothing is lost. Calling it again returns the same promise.
   */
  close(timeoutMs: number = this.#closeTimeoutMs): Promise<void> {
    this.#closePromise ??= this.#close(timeoutMs);
    return this.#closePromise;
  }

  /** A snapshot of the counters. */
  stats(): OutboxWorkerStats {
    return {
      ...this.#counts,
      inFlight: this.#held.size,
      streamLength: this.#backlog.length,
      backlogOver: this.#backlog.over,
      redisDown: this.#outage.down,
      sink: this.#sink.stats(),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Reading and claiming

  async #read(): Promise<void> {
    let failures = 0;
    await whenReady(this.#reader, 2000);
    while (this.#state === 'running') {
      const pause = this.#pausedUntil - Date.now();
      if (pause > 0) {
        this.#endDrains(false);
        await sleep(pause, this.#abort.signal);
        continue;
      }
      if (!this.#hasRoom()) {
        // flush() delivers what is held first, then asks again.
        this.#endDrains(false);
        await this.#waitForRoom();
        continue;
      }
      const seq = ++this.#readSeq;
      const draining = this.#drainWaiters.length > 0;
      try {
        await this.#ensureGroup();
        this.#readerId ??= await this.#clientId();
        const count = Math.min(this.#readCount, this.#room());
        const group = ['GROUP', this.#group, this.#consumer, 'COUNT', count] as const;
        this.#blocking = !draining;
        const reply = draining
          ? await this.#reader.xreadgroup(...group, 'STREAMS', this.#stream, '>')
          : await this.#reader.xreadgroup(...group, 'BLOCK', this.#blockMs, 'STREAMS', this.#stream, '>');
        this.#blocking = false;
        failures = 0;
        this.#up();
        const entries = entriesOfRead(reply);
        // Read even while closing: they are this worker's now, and the sink may still deliver them.
        this.#counts.read += entries.length;
        this.#accept(entries);
        if (entries.length === 0) this.#endDrains(true, seq);
      } catch (error) {
        this.#blocking = false;
        if (this.#state !== 'running') break;
        if (isNoGroup(error)) {
          // Redis lost the group (restarted without persistence): create it again.
          this.#groupReady = false;
          continue;
        }
        failures += 1;
        this.#failed(error, this.#reader);
        // flush() does not wait for Redis to come back.
        this.#endDrains(false);
        await retryPause(this.#reader, backoff(failures, 100, 2000), this.#abort.signal);
      }
    }
    this.#endDrains(false);
  }

  /**
   * The reader's `CLIENT ID`, so flush() can end its blocking read early; 0 when the server refuses the
   * command (some managed services do), and flush() then waits out at most one `blockMs`.
   */
  async #clientId(): Promise<number> {
    try {
      return Number(await this.#reader.call('CLIENT', 'ID'));
    } catch (error) {
      if (this.#reader.status !== 'ready') throw error;
      return 0;
    }
  }

  /**
   * Asks the read loop to read without blocking until the stream has nothing more for this worker.
   * Resolves true when it got there, false when it stopped first (no room, Redis unreachable, closing).
   */
  #drain(): Promise<boolean> {
    return new Promise((resolve) => {
      this.#drainWaiters.push({ after: this.#readSeq, resolve });
      // A read blocked waiting for new entries is ended now rather than after blockMs.
      if (this.#blocking && this.#readerId) {
        this.#redis.call('CLIENT', 'UNBLOCK', String(this.#readerId)).catch(() => {});
      }
      for (const wake of this.#roomWaiters.splice(0)) wake();
    });
  }

  /**
   * Ends drains: `complete` after an empty read numbered `seq` (only drains asked before that read
   * started: an entry appended before the flush() call was in the stream when it ran).
   */
  #endDrains(complete: boolean, seq = Number.POSITIVE_INFINITY): void {
    if (this.#drainWaiters.length === 0) return;
    const ended = this.#drainWaiters.filter((waiter) => waiter.after < seq);
    this.#drainWaiters = this.#drainWaiters.filter((waiter) => waiter.after >= seq);
    for (const waiter of ended) waiter.resolve(complete);
  }

  /** Takes over entries left pending longer than `claimIdleMs`, and checks the stream's length. */
  #claim(): Promise<void> {
    if (this.#claiming || this.#state !== 'running') return this.#claiming ?? Promise.resolve();
    // Credentials were refused: claimed entries would only be refused again until the pause ends.
    if (this.#pausedUntil > Date.now()) return Promise.resolve();
    this.#claiming = (async () => {
      try {
        await this.#ensureGroup();
        let cursor = '0-0';
        do {
          if (!this.#hasRoom() || this.#state !== 'running') break;
          const reply = (await this.#redis.xautoclaim(
            this.#stream,
            this.#group,
            this.#consumer,
            this.#claimIdleMs,
            cursor,
            'COUNT',
            Math.min(this.#readCount, this.#room()),
          )) as [string, StreamEntry[], string[]?];
          cursor = reply[0];
          const entries = reply[1].filter(([id, fields]) => fields && !this.#held.has(id));
          this.#counts.claimed += entries.length;
          this.#accept(entries);
        } while (cursor !== '0-0');
        this.#backlog.observe(await this.#redis.xlen(this.#stream));
        this.#up();
      } catch (error) {
        if (isNoGroup(error)) this.#groupReady = false;
        else this.#failed(error);
      } finally {
        this.#claiming = undefined;
      }
    })();
    return this.#claiming;
  }

  /** Resets the idle time of every entry this worker holds, so no other worker takes them over. */
  async #heartbeat(): Promise<void> {
    if (this.#held.size === 0 || this.#state === 'closed') return;
    const ids = [...this.#held.keys()];
    try {
      for (let i = 0; i < ids.length; i += 1000) {
        await this.#redis.xclaim(
          this.#stream,
          this.#group,
          this.#consumer,
          0,
          ...ids.slice(i, i + 1000),
          'JUSTID',
        );
      }
    } catch (error) {
      this.#failed(error);
    }
  }

  async #ensureGroup(): Promise<void> {
    if (this.#groupReady) return;
    await whenReady(this.#redis, 2000);
    await ensureGroup(this.#redis, this.#stream, this.#group);
    this.#groupReady = true;
  }

  /** Hands entries to the sink; each one's outcome decides whether it is acknowledged. */
  #accept(entries: readonly StreamEntry[]): void {
    for (const [id, fields] of entries) {
      if (this.#held.has(id) || !fields) continue;
      const message = decodeMessage(fields);
      const bytes = fields.reduce((sum, field) => sum + field.length, 0);
      this.#held.set(id, { bytes });
      this.#heldBytes += bytes;
      if (!message) {
        this.#counts.rejected += 1;
        this.#report(
          new IdstitchError(
            'invalid_message',
            `outbox entry ${id} is not an idstitch message; it was removed from the stream`,
            {
              details: { stream: this.#stream, id },
            },
          ),
        );
        this.#ack(id);
        continue;
      }
      this.#sink.write(message, (outcome) => this.#settled(id, outcome));
    }
  }

  #settled(id: string, outcome: MixpanelMessageOutcome): void {
    if (outcome === 'delivered') {
      this.#counts.delivered += 1;
      this.#ack(id);
    } else if (KEPT_FOR_RETRY.has(outcome)) {
      // Left pending: this or another worker claims it again once it has been idle for claimIdleMs.
      this.#counts.released += 1;
      this.#release(id);
    } else {
      // Refused for good (already reported by the sink): sending it again would be refused again.
      this.#counts.rejected += 1;
      this.#ack(id);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Acknowledging

  #ack(id: string): void {
    this.#toAck.push(id);
    this.#acking ??= this.#ackLoop().finally(() => {
      this.#acking = undefined;
    });
  }

  async #ackLoop(): Promise<void> {
    // Let the rest of a delivered batch settle first, so one round trip acknowledges it all.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await whenReady(this.#redis, 2000);
    while (this.#toAck.length > 0 && this.#state !== 'closed') {
      const ids = this.#toAck.slice(0, 1000);
      try {
        // Acknowledged, then deleted, so the stream holds only what is not delivered yet. Not in a
        // MULTI: Redis refuses to queue a transaction while it is over maxmemory, but runs XACK and XDEL
        // (they free memory), and that is exactly when delivery must go on. Both are safe to repeat.
        const results = await this.#redis
          .pipeline()
          .xack(this.#stream, this.#group, ...ids)
          .xdel(this.#stream, ...ids)
          .exec();
        const failure = results?.find(([error]) => error)?.[0];
        if (!results || failure) throw failure ?? new Error('no reply');
        this.#toAck.splice(0, ids.length);
        this.#counts.acked += ids.length;
        this.#ackAttempt = 0;
        for (const id of ids) this.#release(id);
        this.#up();
      } catch (error) {
        // The entries stay pending (and renewed by the heartbeat) until the acknowledgement lands.
        this.#ackAttempt += 1;
        this.#failed(error);
        if (this.#state === 'closing') return;
        await retryPause(this.#redis, backoff(this.#ackAttempt, 100, 2000), this.#abort.signal);
      }
    }
  }

  /** Resolves when the acknowledgements due now have been sent, or failed (Redis unreachable). */
  async #ackSettled(): Promise<void> {
    while (this.#toAck.length > 0 && this.#acking) {
      const attempt = this.#ackAttempt;
      await Promise.race([this.#acking, sleep(50)]);
      if (this.#ackAttempt > attempt) return;
    }
  }

  #release(id: string): void {
    const held = this.#held.get(id);
    if (!held) return;
    this.#held.delete(id);
    this.#heldBytes -= held.bytes;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }

  #room(): number {
    return Math.max(1, Math.min(this.#readCount, this.#maxInFlight - this.#held.size));
  }

  #hasRoom(): boolean {
    return this.#held.size < this.#maxInFlight && this.#heldBytes < this.#maxInFlightBytes;
  }

  #waitForRoom(): Promise<void> {
    return new Promise((resolve) => {
      this.#roomWaiters.push(resolve);
      this.#abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Shutdown and reporting

  async #close(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    const wasRunning = this.#state === 'running';
    this.#state = 'closing';
    clearInterval(this.#claimTimer);
    clearInterval(this.#heartbeatTimer);
    const stopped = Promise.all([this.#readLoop, this.#claiming]);
    // Wakes a read loop that waits for room or a pause; a blocking read ends within blockMs.
    for (const wake of this.#roomWaiters.splice(0)) wake();
    if (wasRunning) {
      let done = false;
      await Promise.race([stopped.then(() => (done = true)), sleep(remaining())]);
      // Out of time: cut the read. Entries it fetched stay pending and are claimed by another worker.
      if (!done) this.#reader.disconnect();
    }
    await this.#sink.close(remaining());
    while (this.#toAck.length > 0 && remaining() > 0) {
      this.#acking ??= this.#ackLoop().finally(() => {
        this.#acking = undefined;
      });
      await Promise.race([this.#acking, sleep(remaining())]);
      if (this.#toAck.length > 0) await sleep(Math.min(100, remaining()));
    }
    this.#state = 'closed';
    this.#abort.abort();
    await Promise.all([closeRedis(this.#reader), closeRedis(this.#redis)]);
  }

  #failed(error: unknown, connection: Redis = this.#redis): void {
    if (this.#state === 'closed') return;
    this.#outage.began(() => {
      const fault = describeRedisFault(connection, error);
      return new IdstitchError(
        'delivery_failed',
        `the outbox worker's Redis commands fail: ${fault.description}; it retries, and entries it holds ` +
          'stay pending until they are acknowledged',
        { cause: fault.error, details: { state: 'down', consumer: this.#consumer, fault: fault.kind } },
      );
    });
  }

  #up(): void {
    this.#outage.ended(
      () =>
        new IdstitchError('delivery_failed', 'the outbox worker reaches Redis again', {
          details: { state: 'recovered', consumer: this.#consumer },
        }),
    );
  }

  #report(error: IdstitchError): void {
    reportSafely(this.#onError, error);
  }
}

/**
 * The sink reports some messages as lost that the outbox still has: they stay pending in the stream.
 * Says so, so that an operator reading the log does not count them as lost.
 */
function kept(error: IdstitchError): IdstitchError {
  if (!['retries_exhausted', 'shutdown_timeout', 'unauthorized', 'queue_overflow'].includes(error.code)) {
    return error;
  }
  return new IdstitchError(
    error.code,
    `${error.message.replace(/^idstitch: /, '')} (outbox: these stay in the Redis stream and are sent again ` +
      'once a worker claims them)',
    { cause: error.cause, details: { ...error.details, keptInStream: true } },
  );
}
