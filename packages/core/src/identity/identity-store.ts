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

export interface MemoryIdentityStoreOptions {
  /** Most updates held per device; older ones are dropped first. Default 50. */
  maxUpdatesPerDevice?: number;
  /** Most devices with held updates; the least recently active is dropped first. Default 10 000. */
  maxDevices?: number;
  /** How long an update is held before it expires, in milliseconds. Default 24 hours. */
  maxAgeMs?: number;
  /** Told about every update dropped for a bound, so nothing is lost silently. */
  onDrop?: (deviceId: string, count: number, reason: 'per-device limit' | 'device limit' | 'expired') => void;
  now?: () => number;
}

/** In-process {@link IdentityStore}, bounded in count and age. */
export class MemoryIdentityStore implements IdentityStore {
  private readonly devices = new Map<string, HeldProfileUpdate[]>();
  private readonly maxUpdatesPerDevice: number;
  private readonly maxDevices: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly options: MemoryIdentityStoreOptions = {}) {
    this.maxUpdatesPerDevice = options.maxUpdatesPerDevice ?? 50;
    this.maxDevices = options.maxDevices ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 24 * 60 * 60 * 1000;
    this.now = options.now ?? Date.now;
  }

  /** Devices with held updates. */
  get size(): number {
    return this.devices.size;
  }

  hold(deviceId: string, update: HeldProfileUpdate): void {
    const held = this.devices.get(deviceId) ?? [];
    // Re-insert so Map order is least-recently-active first.
    this.devices.delete(deviceId);
    held.push(update);
    if (held.length > this.maxUpdatesPerDevice) {
      const dropped = held.splice(0, held.length - this.maxUpdatesPerDevice);
      this.options.onDrop?.(deviceId, dropped.length, 'per-device limit');
    }
    this.devices.set(deviceId, held);
    while (this.devices.size > this.maxDevices) {
      const [oldest, updates] = this.devices.entries().next().value as [string, HeldProfileUpdate[]];
      this.devices.delete(oldest);
      this.options.onDrop?.(oldest, updates.length, 'device limit');
    }
  }

  take(deviceId: string): HeldProfileUpdate[] {
    const held = this.devices.get(deviceId);
    if (!held) return [];
    this.devices.delete(deviceId);
    const cutoff = this.now() - this.maxAgeMs;
    const fresh = held.filter((update) => update.heldAt >= cutoff);
    if (fresh.length < held.length) this.options.onDrop?.(deviceId, held.length - fresh.length, 'expired');
    return fresh;
  }
}
