import { randomBytes } from 'node:crypto';
import {
  type HeldProfileUpdate,
  type IdentityStore,
  IdstitchError,
  IdstitchOptionsError,
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
  safeRedisUrl,
  sleep,
  whenReady,
} from './connection.js';
import { HeldScripts, type HoldLimits } from './held-scripts.js';
import { positiveInteger, resolvePrefix } from './options.js';

/** Why held updates were dropped; every drop is told to `onDrop`. */
export type RedisIdentityStoreDropReason =
  /** More than `maxUpdatesPerDevice` or `maxBytesPerDevice` were held for one device; the oldest went. */
  | 'per-device limit'
  /**
   * The store held more than `maxBytes` or `maxDevices`: the least recently held devices' updates went
   * (a flood of anonymous visitors, often bots without cookies, must not fill Redis).
   */
  | 'store limit'
  /** Held longer than `maxAgeMs`. */
  | 'expired'
  /** Redis was unreachable and the local buffer (`maxBufferedUpdates`) was full; the oldest went. */
  | 'local buffer limit'
  /** `close()` ran out of time while Redis was unreachable. */
  | 'shutdown';

export interface RedisIdentityStoreOptions {
  /** Where Redis is: a `redis://` URL, ioredis options, or an ioredis client (duplicated, never used). */
  redis: RedisConnection;
  /**
   * Prefix of every key, so several apps (or environments) share one Redis. Held updates live in
   * `<prefix>held:<device id>`. Default `'idstitch:'`.
   */
  prefix?: string;
  /** Most updates held per device; older ones are dropped first. Default 50 (as the memory store). */
  maxUpdatesPerDevice?: number;
  /** Most bytes (serialised updates) held per device; older ones are dropped first. Default 64 KiB. */
  maxBytesPerDevice?: number;
  /**
   * Most bytes all devices' held updates may take in Redis under this prefix (an estimate that counts
   * each device's keys too). Past it the least recently held devices are dropped (`'store limit'`).
   * Default 64 MiB, or a quarter of the Redis `maxmemory` when that is set and smaller, so held updates
   * never fill a Redis that also holds the outbox.
   */
  maxBytes?: number;
  /** Most devices with held updates under this prefix; past it the least recently held go. Default 100 000. */
  maxDevices?: number;
  /**
   * How long updates are held, in milliseconds: the key's TTL, renewed by each new update, and the
   * age past which an update is dropped on take. Default 24 hours.
   */
  maxAgeMs?: number;
  /**
   * Updates kept in this process while Redis is unreachable, across all devices; they are written to
   * Redis as soon as it answers again. Past the bound the oldest device's updates are dropped (told
   * to `onDrop` as `'local buffer limit'`). Default 1000.
   */
  maxBufferedUpdates?: number;
  /**
   * How long `take()` keeps retrying while Redis is unreachable, in milliseconds. `take()` runs off
   * the request path, so this delays only the held updates, never the response. Default 5000.
   */
  takeRetryMs?: number;
  /** A command not answered within this is treated as failed. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** How long the first commands wait for the connection to be made at boot. Default 2000 ms. */
  connectWaitMs?: number;
  /** Told about every update dropped for a bound. Default: reported to `onError` as `held_updates_dropped`. */
  onDrop?: (deviceId: string, count: number, reason: RedisIdentityStoreDropReason) => void;
  /**
   * Told when Redis becomes unreachable (`store_failed`, `details.state: 'down'`) and reachable again
   * (`details.state: 'recovered'`), once per outage, not once per call. Default: `console.warn`.
   */
  onError?: (error: IdstitchError) => void;
  /** Test seam for time. Default `Date.now`. */
  now?: () => number;
}

/** Counters of a {@link RedisIdentityStore}. */
export interface RedisIdentityStoreStats {
  /** Updates written to Redis (directly, or later from the local buffer). */
  held: number;
  /** Updates waiting in the local buffer for Redis to answer. */
  buffered: number;
  /** Updates returned by `take()`. */
  taken: number;
  /** Updates dropped, by reason. */
  dropped: Record<RedisIdentityStoreDropReason, number>;
  /** Bytes held in Redis under this prefix, as of the last hold (see `maxBytes`). */
  heldBytes: number | undefined;
  /** The byte bound in force (`maxBytes`, or a quarter of Redis's `maxmemory` when smaller). */
  maxBytes: number;
  /** Whether the last command failed because Redis was unreachable. */
  redisDown: boolean;
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
  readonly #maxUpdatesPerDevice: number;
  readonly #maxAgeMs: number;
  readonly #maxBuffered: number;
  readonly #takeRetryMs: number;
  readonly #connectWaitMs: number;
  readonly #onDrop: (deviceId: string, count: number, reason: RedisIdentityStoreDropReason) => void;
  readonly #onError: (error: IdstitchError) => void;
  readonly #now: () => number;
  /** Updates (JSON) waiting for Redis, by device, least recently held first. */
  readonly #buffer = new Map<string, string[]>();
  #buffered = 0;
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
  readonly #abort = new AbortController();
  readonly #stats = {
    held: 0,
    taken: 0,
    dropped: { 'per-device limit': 0, 'store limit': 0, expired: 0, 'local buffer limit': 0, shutdown: 0 },
  };

  /** @throws {IdstitchOptionsError} when an option is invalid; the message names the fix. */
  constructor(options: RedisIdentityStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new IdstitchOptionsError(
        'options',
        'must be an object',
        'Pass new RedisIdentityStore({ redis: process.env.REDIS_URL }).',
      );
    }
    this.#prefix = resolvePrefix(options.prefix);
    this.#maxUpdatesPerDevice = positiveInteger(options.maxUpdatesPerDevice, 'maxUpdatesPerDevice', 50);
    this.#maxAgeMs = positiveInteger(options.maxAgeMs, 'maxAgeMs', 24 * 60 * 60 * 1000);
    this.#configuredMaxBytes = positiveInteger(options.maxBytes, 'maxBytes', 64 * 1024 * 1024, 4096);
    const maxBytesPerDevice = positiveInteger(
      options.maxBytesPerDevice,
      'maxBytesPerDevice',
      Math.min(64 * 1024, this.#configuredMaxBytes),
      1024,
      this.#configuredMaxBytes,
    );
    this.#limits = {
      ttlMs: this.#maxAgeMs,
      maxUpdates: this.#maxUpdatesPerDevice,
      maxDeviceBytes: maxBytesPerDevice,
      maxBytes: this.#configuredMaxBytes,
      maxDevices: positiveInteger(options.maxDevices, 'maxDevices', 100_000),
    };
    this.#maxBuffered = positiveInteger(options.maxBufferedUpdates, 'maxBufferedUpdates', 1000);
    this.#takeRetryMs = positiveInteger(options.takeRetryMs, 'takeRetryMs', 5000, 0);
    this.#connectWaitMs = positiveInteger(options.connectWaitMs, 'connectWaitMs', 2000, 0);
    const commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 2000);
    // A claim is stale once its taker would long have given up (or died): then its updates go to the
    // device's next take.
    this.#claimStaleMs = this.#takeRetryMs + 4 * commandTimeoutMs + 30_000;
    this.#onError = options.onError ?? ((error) => console.warn(error.message));
    this.#onDrop =
      options.onDrop ??
      ((_deviceId, count, reason) =>
        this.#report(
          new IdstitchError(
            'held_updates_dropped',
            `dropped ${count} held anonymous profile update(s): ${reason}`,
            { details: { count, reason } },
          ),
        ));
    this.#now = options.now ?? Date.now;
    const redis = openRedis(options.redis, 'identity-store', commandTimeoutMs);
    this.#scripts = new HeldScripts(redis, this.#prefix);
    // Replay what was buffered the moment Redis is back, rather than at the next backoff tick.
    redis.on('ready', () => {
      void this.#readMaxmemory();
      if (this.#buffered > 0) this.#scheduleReplay(0);
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
    if (this.#closed) return this.#drop(deviceId, 1, 'shutdown');
    // Each entry carries an ID: a hold that timed out but ran, then written again from the local
    // buffer, is in Redis twice and taken once.
    const json = JSON.stringify({ i: `${this.#entryPrefix}${(this.#entrySeq++).toString(36)}`, u: update });
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
    const local = this.#buffer.get(deviceId) ?? [];
    this.#unbuffer(deviceId);
    await whenReady(this.#redis, this.#connectWaitMs);
    const takeId = randomBytes(8).toString('hex');
    const deadline = this.#now() + this.#takeRetryMs;
    let remote: string[] | undefined;
    for (let attempt = 1; remote === undefined; attempt += 1) {
      try {
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
    return this.#decode(deviceId, [...remote, ...local]);
  }

  /** A snapshot of the counters. */
  stats(): RedisIdentityStoreStats {
    return {
      held: this.#stats.held,
      buffered: this.#buffered,
      taken: this.#stats.taken,
      dropped: { ...this.#stats.dropped },
      heldBytes: this.#heldBytes,
      maxBytes: this.#limits.maxBytes,
      redisDown: this.#outage.down,
    };
  }

  /**
   * Writes what is still buffered (waiting at most `timeoutMs` for Redis), then ends the connection.
   * Updates still buffered at the deadline are dropped and told to `onDrop` as `'shutdown'`.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const deadline = this.#now() + timeoutMs;
    while (this.#buffered > 0 && this.#now() < deadline) {
      if (!(await this.#replay())) await sleep(Math.min(100, Math.max(0, deadline - this.#now())));
    }
    while ((this.#toRelease.size > 0 || this.#toConfirm.size > 0) && this.#now() < deadline) {
      if (!(await this.#settleClaims())) await sleep(Math.min(100, Math.max(0, deadline - this.#now())));
    }
    if (this.#replayTimer) clearTimeout(this.#replayTimer);
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#abort.abort();
    for (const [deviceId, updates] of this.#buffer) this.#drop(deviceId, updates.length, 'shutdown');
    this.#buffer.clear();
    this.#buffered = 0;
    await closeRedis(this.#redis);
  }

  // ---------------------------------------------------------------------------------------------

  async #write(deviceId: string, updates: string[]): Promise<void> {
    const result = await this.#scripts.hold(deviceId, updates, this.#limits, this.#now());
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
    const cutoff = this.#now() - this.#maxAgeMs;
    const updates: HeldProfileUpdate[] = [];
    const seen = new Set<string>();
    let expired = 0;
    for (const json of raw) {
      let update: HeldProfileUpdate;
      try {
        const entry = JSON.parse(json) as { i?: unknown; u?: HeldProfileUpdate } & HeldProfileUpdate;
        if (typeof entry.i === 'string' && entry.u && typeof entry.u === 'object') {
          // The same entry twice: a hold that timed out but ran, written again from the buffer.
          if (seen.has(entry.i)) continue;
          seen.add(entry.i);
          update = entry.u;
        } else {
          update = entry;
        }
      } catch (error) {
        this.#report(
          new IdstitchError('store_failed', 'a held update in Redis was not valid JSON and was skipped', {
            cause: error,
          }),
        );
        continue;
      }
      if (typeof update.heldAt === 'number' && update.heldAt < cutoff) expired += 1;
      else updates.push(update);
    }
    if (expired > 0) this.#drop(deviceId, expired, 'expired');
    // Stable: Redis order first, then this process's buffer, each already oldest first.
    updates.sort((a, b) => (a.heldAt ?? 0) - (b.heldAt ?? 0));
    this.#stats.taken += updates.length;
    return updates;
  }

  /**
   * Adds updates to the local buffer behind the device's buffered ones, enforcing both bounds. The
   * device becomes the most recently held, unless `first` (a failed replay puts its batch back where
   * it was, at the front).
   */
  #bufferUpdates(deviceId: string, updates: string[], first = false): void {
    const held = this.#buffer.get(deviceId) ?? [];
    this.#unbuffer(deviceId);
    held.push(...updates);
    if (held.length > this.#maxUpdatesPerDevice) {
      const over = held.length - this.#maxUpdatesPerDevice;
      held.splice(0, over);
      this.#drop(deviceId, over, 'per-device limit');
    }
    if (first) {
      const rest = [...this.#buffer];
      this.#buffer.clear();
      this.#buffer.set(deviceId, held);
      for (const [other, otherUpdates] of rest) this.#buffer.set(other, otherUpdates);
    } else {
      this.#buffer.set(deviceId, held);
    }
    this.#buffered += held.length;
    while (this.#buffered > this.#maxBuffered) {
      const [oldest, oldestUpdates] = this.#buffer.entries().next().value as [string, string[]];
      const over = Math.min(oldestUpdates.length, this.#buffered - this.#maxBuffered);
      oldestUpdates.splice(0, over);
      this.#buffered -= over;
      if (oldestUpdates.length === 0) this.#buffer.delete(oldest);
      this.#drop(oldest, over, 'local buffer limit');
    }
    if (!first && !this.#closed) this.#scheduleReplay();
  }

  #unbuffer(deviceId: string): void {
    const held = this.#buffer.get(deviceId);
    if (!held) return;
    this.#buffer.delete(deviceId);
    this.#buffered -= held.length;
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
    if (this.#replayRun) return this.#replayRun.then(() => this.#buffered === 0);
    this.#replayRun = this.#replayBuffer().finally(() => {
      this.#replayRun = undefined;
    });
    return this.#replayRun;
  }

  async #replayBuffer(): Promise<boolean> {
    for (const deviceId of [...this.#buffer.keys()]) {
      const batch = this.#buffer.get(deviceId);
      if (!batch) continue;
      // Out of the buffer while it is written; updates held meanwhile queue behind it (see hold()).
      this.#unbuffer(deviceId);
      this.#replayingDevice = deviceId;
      try {
        await this.#write(deviceId, batch);
      } catch (error) {
        // Back at the front, where it was: a failed write must not make the device look recent.
        const later = this.#buffer.get(deviceId) ?? [];
        this.#unbuffer(deviceId);
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
    return this.#buffered === 0;
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
          details: { state: 'recovered', buffered: this.#buffered },
        }),
    );
  }

  #report(error: IdstitchError): void {
    reportSafely(this.#onError, error);
  }
}
