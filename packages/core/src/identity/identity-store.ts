import type { ProfileUpdate } from '../messages/types.js';

/** A profile update made while the visitor was anonymous, held until they identify. */
export type HeldProfileUpdate = Omit<ProfileUpdate, '$distinct_id' | '$token'> & {
  /** When it was held, in milliseconds since the epoch. */
  heldAt: number;
};

/**
 * Where anonymous profile updates wait for identify, keyed by device ID. The in-memory default suits one
 * process; a shared store (Redis) lets a login on another instance pick them up.
 */
export interface IdentityStore {
  /** Holds one update for a device. */
  hold(deviceId: string, update: HeldProfileUpdate): void | Promise<void>;
  /** Removes and returns the device's held updates, oldest first. Atomic: concurrent takes get them once. */
  take(deviceId: string): HeldProfileUpdate[] | Promise<HeldProfileUpdate[]>;
}

/** Why the in-memory store dropped held updates. */
export type HeldUpdateDropReason =
  | 'per-device limit'
  | 'device limit'
  | 'byte budget'
  | 'too large'
  | 'expired';

export interface MemoryIdentityStoreOptions {
  /**
   * Most bytes of held updates (their JSON size plus a per-update overhead) across all devices; the least recently
   * active devices' updates are dropped first. Default 32 MiB.
   */
  maxBytes?: number;
  /** Most updates held per device; older ones are dropped first. Default 50. */
  maxUpdatesPerDevice?: number;
  /** Most devices with held updates; the least recently active is dropped first. Default 10 000. */
  maxDevices?: number;
  /** How long an update is held before it expires, in milliseconds. Default 24 hours. */
  maxAgeMs?: number;
  /** Told about every update dropped for a bound, so nothing is lost silently. */
  onDrop?: (deviceId: string, count: number, reason: HeldUpdateDropReason) => void;
  now?: () => number;
}

/** What one held update costs the heap, roughly: its JSON text plus the objects around it. */
const UPDATE_OVERHEAD_BYTES = 128;

function sizeOf(update: HeldProfileUpdate): number {
  try {
    return 2 * JSON.stringify(update).length + UPDATE_OVERHEAD_BYTES;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

interface Held {
  update: HeldProfileUpdate;
  bytes: number;
}

/** In-process {@link IdentityStore}, bounded in bytes, count and age. */
export class MemoryIdentityStore implements IdentityStore {
  private readonly devices = new Map<string, Held[]>();
  private readonly maxBytes: number;
  private heldBytes = 0;
  private readonly droppedBy: Record<HeldUpdateDropReason, number> = {
    'per-device limit': 0,
    'device limit': 0,
    'byte budget': 0,
    'too large': 0,
    expired: 0,
  };
  private readonly maxUpdatesPerDevice: number;
  private readonly maxDevices: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly options: MemoryIdentityStoreOptions = {}) {
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.maxUpdatesPerDevice = options.maxUpdatesPerDevice ?? 50;
    this.maxDevices = options.maxDevices ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 24 * 60 * 60 * 1000;
    this.now = options.now ?? Date.now;
  }

  /** Devices with held updates. */
  get size(): number {
    return this.devices.size;
  }

  /** Bytes held now (estimated), and every update dropped so far, by reason. */
  stats(): { heldBytes: number; dropped: Readonly<Record<HeldUpdateDropReason, number>> } {
    return { heldBytes: this.heldBytes, dropped: { ...this.droppedBy } };
  }

  hold(deviceId: string, update: HeldProfileUpdate): void {
    const bytes = sizeOf(update);
    if (bytes > this.maxBytes) return this.drop(deviceId, 1, 'too large');
    const held = this.devices.get(deviceId) ?? [];
    // Re-insert so Map order is least-recently-active first.
    this.devices.delete(deviceId);
    held.push({ update, bytes });
    this.heldBytes += bytes;
    if (held.length > this.maxUpdatesPerDevice) {
      this.release(held.splice(0, held.length - this.maxUpdatesPerDevice), deviceId, 'per-device limit');
    }
    this.devices.set(deviceId, held);
    while (this.devices.size > this.maxDevices) this.evictOldest('device limit');
    while (this.heldBytes > this.maxBytes) {
      const [oldest, updates] = this.devices.entries().next().value as [string, Held[]];
      if (oldest !== deviceId || updates.length <= 1) {
        this.evictOldest('byte budget');
        continue;
      }
      // Only this device is left: drop its oldest updates first.
      this.release(updates.splice(0, 1), deviceId, 'byte budget');
    }
  }

  take(deviceId: string): HeldProfileUpdate[] {
    const held = this.devices.get(deviceId);
    if (!held) return [];
    this.devices.delete(deviceId);
    for (const { bytes } of held) this.heldBytes -= bytes;
    const cutoff = this.now() - this.maxAgeMs;
    const fresh = held.filter(({ update }) => update.heldAt >= cutoff);
    if (fresh.length < held.length) this.drop(deviceId, held.length - fresh.length, 'expired');
    return fresh.map(({ update }) => update);
  }

  private evictOldest(reason: HeldUpdateDropReason): void {
    const [oldest, updates] = this.devices.entries().next().value as [string, Held[]];
    this.devices.delete(oldest);
    this.release(updates, oldest, reason);
  }

  private release(dropped: Held[], deviceId: string, reason: HeldUpdateDropReason): void {
    for (const { bytes } of dropped) this.heldBytes -= bytes;
    this.drop(deviceId, dropped.length, reason);
  }

  private drop(deviceId: string, count: number, reason: HeldUpdateDropReason): void {
    if (count === 0) return;
    this.droppedBy[reason] += count;
    this.options.onDrop?.(deviceId, count, reason);
  }
}
