import type { Redis } from 'ioredis';
import {
  DEVICE_OVERHEAD_BYTES,
  HOLD_SCRIPT,
  RECEIPTS_KEPT,
  RECEIPTS_TTL_MS,
  RELEASE_SCRIPT,
  TAKE_SCRIPT,
} from '../lua/held.js';

export interface HeldKeys {
  list: string;
  index: string;
  sizes: string;
  total: string;
  claims: string;
}

/** The keys of one device under `prefix`. */
export function heldKeys(prefix: string, deviceId: string): HeldKeys {
  return {
    list: `${prefix}held:${deviceId}`,
    index: `${prefix}held-index`,
    sizes: `${prefix}held-bytes`,
    total: `${prefix}held-total`,
    claims: `${prefix}claim:${deviceId}`,
  };
}

export interface HoldLimits {
  ttlMs: number;
  maxUpdates: number;
  maxDeviceBytes: number;
  maxBytes: number;
  maxDevices: number;
}

/** Per-device drops, the bytes now held, and the devices evicted for the store's bounds. */
export interface HoldResult {
  dropped: number;
  totalBytes: number;
  evicted: [deviceId: string, count: number][];
}

interface ScriptedRedis extends Redis {
  idstitchHold(...args: (string | number)[]): Promise<(string | number)[]>;
  idstitchTake(...args: (string | number)[]): Promise<string>;
  idstitchRelease(...args: (string | number)[]): Promise<number>;
}

/**
 * The ID of a held entry: entries are `{"i":"<id>","u":…}` JSON, written by `RedisIdentityStore`
 * with an ID of hex and base-36 digits (nothing JSON escapes), so it is read without parsing.
 */
export function entryId(entry: string): string {
  return entry.slice(6, entry.indexOf('"', 6));
}

/**
 * The held-update scripts (see `lua/held.ts` for the keys they keep), bound to one connection, prefix
 * and writer (whose receipts make a repeated hold land once).
 */
export class HeldScripts {
  readonly #redis: ScriptedRedis;
  /** This writer's receipts: `<prefix>writer:<writer ID>`. */
  readonly receiptsKey: string;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    writerId: string,
  ) {
    this.receiptsKey = `${prefix}writer:${writerId}`;
    redis.defineCommand('idstitchHold', { numberOfKeys: 5, lua: HOLD_SCRIPT });
    redis.defineCommand('idstitchTake', { numberOfKeys: 5, lua: TAKE_SCRIPT });
    redis.defineCommand('idstitchRelease', { numberOfKeys: 5, lua: RELEASE_SCRIPT });
    this.#redis = redis as ScriptedRedis;
  }

  /** Holds `entries` (each with its ID, see {@link entryId}); entries this writer held before are skipped. */
  async hold(deviceId: string, entries: string[], limits: HoldLimits, now: number): Promise<HoldResult> {
    const keys = heldKeys(this.prefix, deviceId);
    const pairs: string[] = [];
    for (const entry of entries) pairs.push(entryId(entry), entry);
    const reply = await this.#redis.idstitchHold(
      keys.list,
      keys.index,
      keys.sizes,
      keys.total,
      this.receiptsKey,
      deviceId,
      now,
      limits.ttlMs,
      limits.maxUpdates,
      limits.maxDeviceBytes,
      limits.maxBytes,
      limits.maxDevices,
      `${this.prefix}held:`,
      DEVICE_OVERHEAD_BYTES,
      RECEIPTS_KEPT,
      RECEIPTS_TTL_MS,
      ...pairs,
    );
    const evicted: [string, number][] = [];
    for (let i = 2; i + 1 < reply.length; i += 2) evicted.push([String(reply[i]), Number(reply[i + 1])]);
    return { dropped: Number(reply[0]), totalBytes: Number(reply[1]), evicted };
  }

  /** The entries of take `takeId` (moved to its claim; the same on a repeat). */
  async take(deviceId: string, takeId: string, now: number, staleMs: number, claimTtlMs: number) {
    const keys = heldKeys(this.prefix, deviceId);
    const json = await this.#redis.idstitchTake(
      keys.list,
      keys.index,
      keys.sizes,
      keys.total,
      keys.claims,
      deviceId,
      takeId,
      now,
      staleMs,
      claimTtlMs,
    );
    return json ? (JSON.parse(json) as string[]) : [];
  }

  /** Forgets take `takeId`'s claim: its taker has the entries. */
  async confirm(deviceId: string, takeId: string): Promise<void> {
    await this.#redis.hdel(heldKeys(this.prefix, deviceId).claims, takeId);
  }

  /** Puts take `takeId`'s entries back in front of the device's list: its taker gave up. */
  async release(deviceId: string, takeId: string, now: number, ttlMs: number): Promise<number> {
    const keys = heldKeys(this.prefix, deviceId);
    return this.#redis.idstitchRelease(
      keys.list,
      keys.index,
      keys.sizes,
      keys.total,
      keys.claims,
      deviceId,
      takeId,
      now,
      ttlMs,
      DEVICE_OVERHEAD_BYTES,
    );
  }
}
