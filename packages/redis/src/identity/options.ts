import { type IdstitchError, IdstitchOptionsError } from '@idstitch/core';
import type { RedisConnection } from '../connection.js';
import { positiveInteger, resolvePrefix } from '../options.js';
import type { HoldLimits } from './held-scripts.js';

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
  | 'shutdown'
  /**
   * Given up (by `close()`'s deadline, or a bound of the local buffer) while a write of them was in
   * doubt: sent to a stalled Redis and not answered, so Redis may hold them after all, or may not. They
   * are not written again (a retry is safe only while this store runs: its receipts skip what landed).
   */
  | 'in_doubt';

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

/**
 * Counters of a {@link RedisIdentityStore}. Every update given to `hold()` is counted once, at every
 * moment: `received = held + buffered + dropped['local buffer limit'] + dropped.shutdown +
 * dropped.in_doubt` (the other reasons drop updates already held in Redis; `take()` writes buffered
 * updates to Redis before it takes).
 */
export interface RedisIdentityStoreStats {
  /** Updates given to `hold()`. */
  received: number;
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

/** A {@link RedisIdentityStoreOptions} checked, with every default filled in. */
export interface ResolvedIdentityStoreOptions {
  redis: RedisConnection;
  prefix: string;
  /** The bounds the hold script enforces (`maxBytes` before Redis's `maxmemory` is read). */
  limits: HoldLimits;
  maxBufferedUpdates: number;
  takeRetryMs: number;
  connectWaitMs: number;
  commandTimeoutMs: number;
  /** When a take's claim counts as abandoned: its taker would long have given up (or died). */
  claimStaleMs: number;
  /** The hooks; `onDrop` undefined means: report drops to `onError`. */
  onDrop: RedisIdentityStoreOptions['onDrop'];
  onError: (error: IdstitchError) => void;
  now: () => number;
}

/**
 * Checks a {@link RedisIdentityStoreOptions} and fills in the defaults: the one place they are decided.
 * @throws {IdstitchOptionsError} when an option is invalid; the message names the fix.
 */
export function resolveIdentityStoreOptions(
  options: RedisIdentityStoreOptions,
): ResolvedIdentityStoreOptions {
  if (options === null || typeof options !== 'object') {
    throw new IdstitchOptionsError(
      'options',
      'must be an object',
      'Pass new RedisIdentityStore({ redis: process.env.REDIS_URL }).',
    );
  }
  const prefix = resolvePrefix(options.prefix);
  const maxUpdates = positiveInteger(options.maxUpdatesPerDevice, 'maxUpdatesPerDevice', 50);
  const ttlMs = positiveInteger(options.maxAgeMs, 'maxAgeMs', 24 * 60 * 60 * 1000);
  const maxBytes = positiveInteger(options.maxBytes, 'maxBytes', 64 * 1024 * 1024, 4096);
  const maxDeviceBytes = positiveInteger(
    options.maxBytesPerDevice,
    'maxBytesPerDevice',
    Math.min(64 * 1024, maxBytes),
    1024,
    maxBytes,
  );
  const limits: HoldLimits = {
    ttlMs,
    maxUpdates,
    maxDeviceBytes,
    maxBytes,
    maxDevices: positiveInteger(options.maxDevices, 'maxDevices', 100_000),
  };
  const maxBufferedUpdates = positiveInteger(options.maxBufferedUpdates, 'maxBufferedUpdates', 1000);
  const takeRetryMs = positiveInteger(options.takeRetryMs, 'takeRetryMs', 5000, 0);
  const connectWaitMs = positiveInteger(options.connectWaitMs, 'connectWaitMs', 2000, 0);
  const commandTimeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 2000);
  return {
    redis: options.redis,
    prefix,
    limits,
    maxBufferedUpdates,
    takeRetryMs,
    connectWaitMs,
    commandTimeoutMs,
    // A claim is stale once its taker would long have given up (or died): then its updates go to the
    // device's next take.
    claimStaleMs: takeRetryMs + 4 * commandTimeoutMs + 30_000,
    onDrop: options.onDrop,
    onError: options.onError ?? ((error) => console.warn(error.message)),
    now: options.now ?? Date.now,
  };
}
