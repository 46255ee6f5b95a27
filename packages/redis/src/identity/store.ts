import { randomBytes } from 'node:crypto';
import { type HeldProfileUpdate, type IdentityStore, IdstitchError } from '@idstitch/core';
import type { Redis } from 'ioredis';
import { backoff, closeRedis, openRedis, sleep, whenReady } from '../connection.js';
import { classifyFailure, describeRedisFault, RedisOutage, reportSafely, safeRedisUrl } from '../faults.js';
import { decodeHeld } from './decode.js';
import { HeldScripts, type HoldLimits, type HoldResult } from './held-scripts.js';
import { DeviceBuffer } from './local-buffer.js';
import {
  type RedisIdentityStoreDropReason,
  type RedisIdentityStoreOptions,
  type RedisIdentityStoreStats,
  resolveIdentityStoreOptions,
} from './options.js';

/** A write of held entries sent to Redis and not answered yet. */
interface InFlightWrite {
  readonly deviceId: string;
  readonly entries: readonly string[];
  /** close() counted the entries as `'in_doubt'`: the write's outcome is not counted again. */
  givenUp: boolean;
  /** Settles (never rejects) with the write. */
  done: Promise<void>;
}

/**
 * An {@link IdentityStore} in Redis, so anonymous profile updates held on one instance are applied when
 * the visitor logs in on another.
 *
 * - Held updates are a Redis list per device (`<prefix>held:<device id>`) with a TTL of `maxAgeMs`,
 *   trimmed to `maxUpdatesPerDevice` by a Lua script; `take()` reads and deletes the list in one Lua
 *   script, so concurrent logins on two instances apply the updates once.
 * - **While Redis is unreachable**, `hold()` keeps updates in a bounded local buffer
 *   (`maxBufferedUpdates`) and writes them to Redis as soon as it answers; the outage is reported once
 *   to `onError`. `take()` retries for `takeRetryMs` (off the request path), then rejects: the engine
 *   reports `store_failed`, and the updates stay held in Redis until their TTL.
 * - **When Redis stalls**, a hold that timed out may still run when it wakes up. The store is a writer
 *   with receipts in Redis (`<prefix>writer:<id>`, see `lua/held.ts`): a retried hold carries the same
 *   entry IDs and lands once, so a held `$add` is applied once. Updates given up while a write of them
 *   is in doubt (sent, unanswered) are counted as `'in_doubt'`.
 * - Never crashes the app: every failure is reported, never thrown into a request.
 *
 * @example
 * ```ts
 * const identityStore = new RedisIdentityStore({ redis: process.env.REDIS_URL!, prefix: 'shop:' });
 * app.use(idstitch({ sink, identityStore, cookie: { secret } }));
 * ```
 */
export class RedisIdentityStore implements IdentityStore {
  readonly #redis: Redis;
  readonly #scripts: HeldScripts;
  readonly #limits: HoldLimits;
  readonly #configuredMaxBytes: number;
  #heldBytes: number | undefined;
  /** Takes that gave up with their entries claimed in Redis, to put back: take ID → device. */
  readonly #toRelease = new Map<string, string>();
  #releaseTimer: NodeJS.Timeout | undefined;
  readonly #entryPrefix = randomBytes(4).toString('hex');
  #entrySeq = 0;
  readonly #prefix: string;
  readonly #maxAgeMs: number;
  readonly #maxBuffered: number;
  readonly #takeRetryMs: number;
  readonly #connectWaitMs: number;
  readonly #onDrop: (deviceId: string, count: number, reason: RedisIdentityStoreDropReason) => void;
  readonly #onError: (error: IdstitchError) => void;
  readonly #now: () => number;
  /** Updates (JSON) waiting for Redis, by device, least recently held first. */
  readonly #buffer: DeviceBuffer;
  #replayRun: Promise<boolean> | undefined;
  #replayingDevice: string | undefined;
  #replayTimer: NodeJS.Timeout | undefined;
  #replayAttempt = 0;
  /** Takes whose claim is to be deleted once Redis answers: take ID → device. */
  readonly #toConfirm = new Map<string, string>();
  #releaseAttempt = 0;
  readonly #claimStaleMs: number;
  readonly #outage = new RedisOutage((error) => this.#report(error));
  #closed = false;
  /** close() has counted what it gave up: later outcomes of writes are not counted again. */
  #settled = false;
  readonly #abort = new AbortController();
  /** Entries (JSON) whose last write was sent and not answered: Redis may have them. */
  readonly #inDoubt = new Set<string>();
  /** Writes sent and not answered yet. */
  readonly #inFlight = new Set<InFlightWrite>();
  readonly #stats = {
    received: 0,
    held: 0,
    taken: 0,
    dropped: {
      'per-device limit': 0,
      'store limit': 0,
      expired: 0,
      'local buffer limit': 0,
      shutdown: 0,
      in_doubt: 0,
    } satisfies Record<RedisIdentityStoreDropReason, number>,
  };

  /** @throws {IdstitchOptionsError} when an option is invalid; the message names the fix. */
  constructor(options: RedisIdentityStoreOptions) {
    const resolved = resolveIdentityStoreOptions(options);
    this.#prefix = resolved.prefix;
    this.#limits = resolved.limits;
    this.#configuredMaxBytes = resolved.limits.maxBytes;
    this.#maxAgeMs = resolved.limits.ttlMs;
    this.#maxBuffered = resolved.maxBufferedUpdates;
    this.#takeRetryMs = resolved.takeRetryMs;
    this.#connectWaitMs = resolved.connectWaitMs;
    this.#claimStaleMs = resolved.claimStaleMs;
    this.#onError = resolved.onError;
    this.#onDrop =
      resolved.onDrop ??
      ((_deviceId, count, reason) =>
        this.#report(
          new IdstitchError(
            'held_updates_dropped',
            `dropped ${count} held anonymous profile update(s): ${reason}`,
            { details: { count, reason } },
          ),
        ));
    this.#now = resolved.now;
    this.#buffer = new DeviceBuffer(
      resolved.limits.maxUpdates,
      resolved.maxBufferedUpdates,
      (deviceId, entries, reason) => this.#giveUp(deviceId, entries, reason),
    );
    const redis = openRedis(resolved.redis, 'identity-store', resolved.commandTimeoutMs);
    this.#scripts = new HeldScripts(redis, resolved.prefix, randomBytes(8).toString('hex'));
    // Replay what was buffered the moment Redis is back, rather than at the next backoff tick.
    redis.on('ready', () => {
      void this.#readMaxmemory();
      if (this.#buffer.count > 0) this.#scheduleReplay(0);
      if (this.#toRelease.size > 0) this.#scheduleRelease(0);
    });
    this.#redis = redis;
  }

  /** The Redis key holding a device's updates. */
  keyFor(deviceId: string): string {
    return `${this.#prefix}held:${deviceId}`;
  }

  /** Holds one update: in Redis, or in the local buffer while Redis is unreachable. Never rejects. */
  async hold(deviceId: string, update: HeldProfileUpdate): Promise<void> {
    this.#stats.received += 1;
    if (this.#closed) return this.#drop(deviceId, 1, 'shutdown');
    // Each entry carries an ID, receipted in Redis by the hold script: a hold that timed out but ran is
    // skipped when it is written again from the local buffer.
    // The number is padded so that IDs sort in the order they were made: the receipts keep the newest.
    const id = `${this.#entryPrefix}${(this.#entrySeq++).toString(36).padStart(8, '0')}`;
    const json = JSON.stringify({ i: id, u: update });
    // Behind updates of the same device that are still buffered, so the device's order is kept.
    if (this.#buffer.has(deviceId) || this.#replayingDevice === deviceId) {
      return this.#bufferUpdates(deviceId, [json]);
    }
    await whenReady(this.#redis, this.#connectWaitMs);
    try {
      await this.#write(deviceId, [json]);
      this.#up();
    } catch (error) {
      this.#bufferUpdates(deviceId, [json]);
      this.#failed(error);
    }
  }

  /**
   * Removes and returns the device's held updates, oldest first, dropping those older than
   * `maxAgeMs`. Atomic across instances. Retries for `takeRetryMs` while Redis is unreachable, then
   * rejects with a `store_failed` error; the updates then stay held in Redis.
   *
   * Safe when Redis stalls: a take that timed out on the client may still run when Redis wakes up. Each
   * take has an ID; Redis moves the updates to a claim under that ID, a retry of the same take gets the
   * same claim, the claim is deleted once this process has the updates, and a take that gives up puts
   * them back (in the background, as soon as Redis answers). A claim whose taker died is included in
   * the device's next take after `takeRetryMs` plus a margin.
   */
  async take(deviceId: string): Promise<HeldProfileUpdate[]> {
    // A replay in progress may be writing this device's buffered updates; let it land first, so they
    // are taken from Redis rather than both taken here and written there.
    if (this.#replayRun) await this.#replayRun;
    let local = this.#buffer.remove(deviceId) ?? [];
    await whenReady(this.#redis, this.#connectWaitMs);
    const takeId = randomBytes(8).toString('hex');
    const deadline = this.#now() + this.#takeRetryMs;
    let remote: string[] | undefined;
    for (let attempt = 1; remote === undefined; attempt += 1) {
      try {
        // What this process buffered goes to Redis first, through the receipts: a hold of it that timed
        // out may have landed (and been taken by another instance), and must not be applied twice.
        if (local.length > 0) {
          await this.#write(deviceId, local);
          local = [];
        }
        remote = await this.#scripts.take(deviceId, takeId, this.#now(), this.#claimStaleMs, this.#maxAgeMs);
        this.#up();
      } catch (error) {
        this.#failed(error);
        const wait = backoff(attempt, 50, 1000);
        if (this.#closed || this.#now() + wait > deadline) {
          // What this process buffered is not lost: back into the buffer, written to Redis later.
          if (local.length > 0) this.#bufferUpdates(deviceId, local);
          // An attempt may yet run in Redis and claim the updates: put them back once it answers.
          this.#toRelease.set(takeId, deviceId);
          this.#scheduleRelease();
          const fault = describeRedisFault(this.#redis, error);
          throw new IdstitchError(
            'store_failed',
            `could not take held updates for a device from Redis (${fault.description}); they stay held ` +
              'and are applied at its next login',
            { cause: fault.error, details: { attempts: attempt, fault: fault.kind } },
          );
        }
        await sleep(wait, this.#abort.signal);
      }
    }
    if (remote.length > 0) {
      // This process has them: the claim goes (retried in the background if Redis fails right now).
      this.#scripts.confirm(deviceId, takeId).catch(() => {
        this.#toConfirm.set(takeId, deviceId);
        this.#scheduleRelease();
      });
    }
    return this.#decode(deviceId, remote);
  }

  /** A snapshot of the counters. */
  stats(): RedisIdentityStoreStats {
    return {
      received: this.#stats.received,
      held: this.#stats.held,
      buffered: this.#buffer.count,
      taken: this.#stats.taken,
      dropped: { ...this.#stats.dropped },
      heldBytes: this.#heldBytes,
      maxBytes: this.#limits.maxBytes,
      redisDown: this.#outage.down,
    };
  }

  /**
   * Writes what is still buffered and waits for the writes in flight, at most `timeoutMs` (also when
   * Redis is frozen), then ends the connection. Updates still buffered at the deadline are dropped as
   * `'shutdown'`; those whose write was sent and not answered (Redis may hold them) as `'in_doubt'`.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Wall-clock time: the `now` option is a seam for the age of updates, not for timers.
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    const outOfTime = () => sleep(remaining()).then(() => false);
    while ((this.#buffer.count > 0 || this.#inFlight.size > 0) && remaining() > 0) {
      const progress =
        this.#buffer.count > 0
          ? this.#replay()
          : Promise.allSettled([...this.#inFlight].map((write) => write.done)).then(() => true);
      if (!(await Promise.race([progress, outOfTime()]))) await sleep(Math.min(100, remaining()));
    }
    while ((this.#toRelease.size > 0 || this.#toConfirm.size > 0) && remaining() > 0) {
      if (!(await Promise.race([this.#settleClaims(), outOfTime()]))) {
        await sleep(Math.min(100, remaining()));
      }
    }
    if (this.#replayTimer) clearTimeout(this.#replayTimer);
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#abort.abort();
    this.#settled = true;
    for (const write of this.#inFlight) {
      write.givenUp = true;
      for (const entry of write.entries) this.#inDoubt.add(entry);
      this.#giveUp(write.deviceId, write.entries, 'in_doubt');
    }
    this.#inFlight.clear();
    for (const [deviceId, updates] of this.#buffer.entries()) this.#giveUp(deviceId, updates, 'shutdown');
    this.#buffer.clear();
    await closeRedis(this.#redis, deadline);
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Writes entries to Redis (the hold script skips those this writer held before). On a failure the
   * entries are marked in doubt when the write may have run, and it throws; a write that close() gave
   * up meanwhile is counted there, and its outcome here is ignored.
   */
  async #write(deviceId: string, updates: string[]): Promise<void> {
    let result: HoldResult;
    const write: InFlightWrite = { deviceId, entries: updates, givenUp: false, done: Promise.resolve() };
    try {
      const running = this.#scripts.hold(deviceId, updates, this.#limits, this.#now());
      write.done = running.then(
        () => {},
        () => {},
      );
      this.#inFlight.add(write);
      result = await running;
    } catch (error) {
      if (write.givenUp) return;
      if (classifyFailure(error) === 'in_doubt') for (const entry of updates) this.#inDoubt.add(entry);
      throw error;
    } finally {
      this.#inFlight.delete(write);
    }
    if (write.givenUp) return;
    for (const entry of updates) this.#inDoubt.delete(entry);
    this.#stats.held += updates.length;
    this.#heldBytes = result.totalBytes;
    if (result.dropped > 0) this.#drop(deviceId, result.dropped, 'per-device limit');
    for (const [evicted, count] of result.evicted) {
      if (count > 0) this.#drop(evicted, count, 'store limit');
    }
  }

  /**
   * Reads Redis's `maxmemory` (INFO, which managed services allow where CONFIG is refused) and keeps the
   * byte bound at a quarter of it when that is smaller than `maxBytes`.
   */
  async #readMaxmemory(): Promise<void> {
    try {
      const info = await this.#redis.info('memory');
      const maxmemory = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
      const bound = maxmemory > 0 ? Math.min(this.#configuredMaxBytes, Math.floor(maxmemory / 4)) : undefined;
      this.#limits.maxBytes = Math.max(4096, bound ?? this.#configuredMaxBytes);
      this.#limits.maxDeviceBytes = Math.min(this.#limits.maxDeviceBytes, this.#limits.maxBytes);
    } catch {
      // INFO refused (ACL): the configured bound stands.
    }
  }

  #scheduleRelease(delay = backoff(this.#releaseAttempt + 1, 100, 5000)): void {
    if (this.#releaseTimer) {
      if (delay > 0) return;
      clearTimeout(this.#releaseTimer);
    }
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      void this.#settleClaims().then((done) => {
        if (!done && !this.#closed) this.#scheduleRelease();
      });
    }, delay);
    this.#releaseTimer.unref();
  }

  /** Puts back the updates of takes that gave up, and deletes confirmed claims; true when none is left. */
  async #settleClaims(): Promise<boolean> {
    try {
      for (const [takeId, deviceId] of [...this.#toRelease]) {
        await this.#scripts.release(deviceId, takeId, this.#now(), this.#maxAgeMs);
        this.#toRelease.delete(takeId);
      }
      for (const [takeId, deviceId] of [...this.#toConfirm]) {
        await this.#scripts.confirm(deviceId, takeId);
        this.#toConfirm.delete(takeId);
      }
      this.#releaseAttempt = 0;
      return true;
    } catch (error) {
      this.#releaseAttempt += 1;
      this.#failed(error);
      return false;
    }
  }

  #decode(deviceId: string, raw: string[]): HeldProfileUpdate[] {
    const { updates, expired, unreadable } = decodeHeld(raw, this.#now() - this.#maxAgeMs);
    for (const error of unreadable) {
      this.#report(
        new IdstitchError('store_failed', 'a held update in Redis was not valid JSON and was skipped', {
          cause: error,
        }),
      );
    }
    if (expired > 0) this.#drop(deviceId, expired, 'expired');
    this.#stats.taken += updates.length;
    return updates;
  }

  /**
   * Buffers updates (see {@link DeviceBuffer.add}) and, unless `first` (a failed replay), schedules a
   * replay. Once close() has counted what it gave up, a late failure gives its updates up at once.
   */
  #bufferUpdates(deviceId: string, updates: string[], first = false): void {
    if (this.#settled) return this.#giveUp(deviceId, updates, 'shutdown');
    this.#buffer.add(deviceId, updates, first);
    if (!first && !this.#closed) this.#scheduleReplay();
  }

  #scheduleReplay(delay = backoff(this.#replayAttempt + 1, 100, 5000)): void {
    if (this.#closed || this.#replayRun) return;
    if (this.#replayTimer) {
      if (delay > 0) return;
      clearTimeout(this.#replayTimer);
    }
    this.#replayTimer = setTimeout(() => {
      this.#replayTimer = undefined;
      void this.#replay().then((done) => {
        if (!done) this.#scheduleReplay();
      });
    }, delay);
    this.#replayTimer.unref();
  }

  /** Writes the buffer to Redis, device by device; true when it is empty afterwards. */
  #replay(): Promise<boolean> {
    if (this.#replayRun) return this.#replayRun.then(() => this.#buffer.count === 0);
    this.#replayRun = this.#replayBuffer().finally(() => {
      this.#replayRun = undefined;
    });
    return this.#replayRun;
  }

  async #replayBuffer(): Promise<boolean> {
    for (const deviceId of this.#buffer.devices()) {
      if (this.#settled) return false;
      // Out of the buffer while it is written; updates held meanwhile queue behind it (see hold()).
      const batch = this.#buffer.remove(deviceId);
      if (!batch) continue;
      this.#replayingDevice = deviceId;
      try {
        await this.#write(deviceId, batch);
      } catch (error) {
        // Back at the front, where it was: a failed write must not make the device look recent.
        const later = this.#buffer.remove(deviceId) ?? [];
        this.#bufferUpdates(deviceId, [...batch, ...later], true);
        this.#replayAttempt += 1;
        this.#failed(error);
        return false;
      } finally {
        this.#replayingDevice = undefined;
      }
    }
    this.#replayAttempt = 0;
    this.#up();
    return this.#buffer.count === 0;
  }

  /** Gives entries up for `reason`, except those in doubt: Redis may hold them, so they count as `'in_doubt'`. */
  #giveUp(deviceId: string, entries: readonly string[], reason: RedisIdentityStoreDropReason): void {
    let doubtful = 0;
    for (const entry of entries) if (this.#inDoubt.delete(entry)) doubtful += 1;
    if (doubtful > 0) this.#drop(deviceId, doubtful, 'in_doubt');
    if (entries.length > doubtful) this.#drop(deviceId, entries.length - doubtful, reason);
  }

  #drop(deviceId: string, count: number, reason: RedisIdentityStoreDropReason): void {
    this.#stats.dropped[reason] += count;
    try {
      this.#onDrop(deviceId, count, reason);
    } catch (error) {
      this.#report(new IdstitchError('hook_failed', 'the onDrop hook threw', { cause: error }));
    }
  }

  #failed(error: unknown): void {
    this.#outage.began(() => {
      const fault = describeRedisFault(this.#redis, error);
      return new IdstitchError(
        'store_failed',
        `the identity store's Redis commands fail: ${fault.description}; anonymous profile updates are ` +
          `kept in this process (at most ${this.#maxBuffered}) and written to Redis when it takes them again`,
        {
          cause: fault.error,
          details: { state: 'down', fault: fault.kind, redis: safeRedisUrl(this.#redis) },
        },
      );
    });
  }

  #up(): void {
    this.#outage.ended(
      () =>
        new IdstitchError('store_failed', 'Redis answers the identity store again', {
          details: { state: 'recovered', buffered: this.#buffer.count },
        }),
    );
  }

  #report(error: IdstitchError): void {
    reportSafely(this.#onError, error);
  }
}
