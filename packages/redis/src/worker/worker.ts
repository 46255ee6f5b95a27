import { IdstitchError, type MixpanelMessageOutcome, MixpanelSink } from '@idstitch/core';
import type { Redis } from 'ioredis';
import { backoff, closeRedis, openRedis, retryPause, sleep, whenReady } from '../connection.js';
import { describeRedisFault, RedisOutage, reportSafely } from '../faults.js';
import { BacklogMonitor } from '../stream/backlog.js';
import { ensureGroup, isNoGroup } from '../stream/group.js';
import { decodeMessage, entriesOfRead, type StreamEntry } from '../stream/layout.js';
import { AckQueue } from './acks.js';
import { InFlight } from './in-flight.js';
import { type OutboxWorkerOptions, type OutboxWorkerStats, resolveWorkerOptions } from './options.js';
import { KEPT_FOR_RETRY, keptInStream } from './outcomes.js';

type WorkerState = 'idle' | 'running' | 'closing' | 'closed';

/**
 * Delivers the outbox: reads the stream through a consumer group, hands the messages to a
 * {@link MixpanelSink}, and acknowledges (`XACK`, then `XDEL`) an entry only once Mixpanel accepted it
 * or refused it for good. Entries a dead worker left pending are taken over after `claimIdleMs`
 * (`XAUTOCLAIM`), so delivery is at-least-once; an event delivered twice carries the same
 * `$insert_id`, and Mixpanel keeps one, but a profile or group update (a `$add`) is applied twice.
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
  readonly #closeTimeoutMs: number;
  readonly #onError: (error: IdstitchError) => void;
  readonly #sink: MixpanelSink;
  /** Blocking reads only. */
  readonly #reader: Redis;
  /** Everything else: acknowledgements, claims, heartbeats. */
  readonly #redis: Redis;
  readonly #backlog: BacklogMonitor;
  /** Entries read and not yet acknowledged or released. */
  readonly #inFlight: InFlight;
  readonly #acks: AckQueue;
  #state: WorkerState = 'idle';
  #readLoop: Promise<void> | undefined;
  #claiming: Promise<void> | undefined;
  #claimTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #groupReady = false;
  #pausedUntil = 0;
  readonly #outage = new RedisOutage((error) => this.#report(error));
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
    const resolved = resolveWorkerOptions(options);
    this.#stream = resolved.stream;
    this.#group = resolved.group;
    this.#consumer = resolved.consumer;
    this.#claimIdleMs = resolved.claimIdleMs;
    this.#claimIntervalMs = resolved.claimIntervalMs;
    this.#readCount = resolved.readCount;
    this.#blockMs = resolved.blockMs;
    this.#closeTimeoutMs = resolved.closeTimeoutMs;
    this.#onError = resolved.onError;
    this.#backlog = new BacklogMonitor(resolved.stream, resolved.maxStreamLength, (error) =>
      this.#report(error),
    );
    this.#inFlight = new InFlight(resolved.maxInFlight, resolved.maxInFlightBytes, resolved.readCount);

    this.#sink = new MixpanelSink({
      // The sink must hold at least what the worker may hand it, or it would drop for overflow.
      maxQueueMessages: Math.max(resolved.maxInFlight, 1),
      maxQueueBytes: Math.max(resolved.maxInFlightBytes * 2, 1024),
      ...resolved.mixpanel,
      // The Redis stream is the durable queue: no disk spool behind it (nor its production hint).
      spool: false,
      handleSignals: false,
      onError: (error) => this.#report(keptInStream(error)),
    });
    this.#sink.on('paused', ({ resumeAt }) => {
      this.#pausedUntil = Math.max(this.#pausedUntil, resumeAt);
    });
    this.#redis = openRedis(resolved.redis, 'outbox-worker', resolved.commandTimeoutMs);
    // A blocking read may legitimately take blockMs before it answers.
    this.#reader = openRedis(resolved.redis, 'outbox-reader', this.#blockMs + resolved.commandTimeoutMs);
    this.#reader.on('close', () => {
      this.#readerId = undefined;
    });
    this.#acks = new AckQueue(this.#redis, this.#stream, this.#group, {
      closed: () => this.#state === 'closed',
      closing: () => this.#state === 'closing',
      acked: (ids) => {
        this.#counts.acked += ids.length;
        for (const id of ids) this.#inFlight.release(id);
        this.#up();
      },
      failed: (error) => this.#failed(error),
      signal: this.#abort.signal,
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
      await this.#acks.settled();
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
      inFlight: this.#inFlight.size,
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
      if (!this.#inFlight.hasRoom()) {
        // flush() delivers what is held first, then asks again.
        this.#endDrains(false);
        await this.#inFlight.waitForRoom(this.#abort.signal);
        continue;
      }
      const seq = ++this.#readSeq;
      const draining = this.#drainWaiters.length > 0;
      try {
        await this.#ensureGroup();
        this.#readerId ??= await this.#clientId();
        const count = Math.min(this.#readCount, this.#inFlight.room());
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
      this.#inFlight.wake();
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
          if (!this.#inFlight.hasRoom() || this.#state !== 'running') break;
          const reply = (await this.#redis.xautoclaim(
            this.#stream,
            this.#group,
            this.#consumer,
            this.#claimIdleMs,
            cursor,
            'COUNT',
            Math.min(this.#readCount, this.#inFlight.room()),
          )) as [string, StreamEntry[], string[]?];
          cursor = reply[0];
          const entries = reply[1].filter(([id, fields]) => fields && !this.#inFlight.has(id));
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
    if (this.#inFlight.size === 0 || this.#state === 'closed') return;
    const ids = this.#inFlight.ids();
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
      if (this.#inFlight.has(id) || !fields) continue;
      const message = decodeMessage(fields);
      this.#inFlight.add(
        id,
        fields.reduce((sum, field) => sum + field.length, 0),
      );
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
        this.#acks.add(id);
        continue;
      }
      this.#sink.write(message, (outcome) => this.#settled(id, outcome));
    }
  }

  #settled(id: string, outcome: MixpanelMessageOutcome): void {
    if (outcome === 'delivered') {
      this.#counts.delivered += 1;
      this.#acks.add(id);
    } else if (KEPT_FOR_RETRY.has(outcome)) {
      // Left pending: this or another worker claims it again once it has been idle for claimIdleMs.
      this.#counts.released += 1;
      this.#inFlight.release(id);
    } else {
      // Refused for good (already reported by the sink): sending it again would be refused again.
      this.#counts.rejected += 1;
      this.#acks.add(id);
    }
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
    this.#inFlight.wake();
    if (wasRunning) {
      let done = false;
      await Promise.race([stopped.then(() => (done = true)), sleep(remaining())]);
      // Out of time: cut the read. Entries it fetched stay pending and are claimed by another worker.
      if (!done) this.#reader.disconnect();
    }
    await this.#sink.close(remaining());
    await this.#acks.finish(remaining);
    this.#state = 'closed';
    this.#abort.abort();
    await Promise.all([closeRedis(this.#reader, deadline), closeRedis(this.#redis, deadline)]);
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
