import type { RedisIdentityStoreDropReason } from './options.js';

/**
 * Held updates (JSON entries) kept in this process while Redis is unreachable, by device, least
 * recently held device first. Bounded per device (`maxUpdatesPerDevice`, oldest first) and in all
 * (`maxBuffered`, the least recently held device's oldest first); every drop is told to `drop`.
 */
export class DeviceBuffer {
  readonly #devices = new Map<string, string[]>();
  #count = 0;

  constructor(
    private readonly maxUpdatesPerDevice: number,
    private readonly maxBuffered: number,
    /** Told the entries dropped (the store counts those in doubt as `'in_doubt'`). */
    private readonly drop: (
      deviceId: string,
      entries: string[],
      reason: RedisIdentityStoreDropReason,
    ) => void,
  ) {}

  /** Updates buffered, across all devices. */
  get count(): number {
    return this.#count;
  }

  has(deviceId: string): boolean {
    return this.#devices.has(deviceId);
  }

  /** The devices with buffered updates, least recently held first. */
  devices(): string[] {
    return [...this.#devices.keys()];
  }

  /** Each device's buffered updates, least recently held first. */
  entries(): IterableIterator<[string, string[]]> {
    return this.#devices.entries();
  }

  /**
   * Adds updates behind the device's buffered ones, enforcing both bounds. The device becomes the most
   * recently held, unless `first` (a failed replay puts its batch back where it was, at the front).
   */
  add(deviceId: string, updates: readonly string[], first = false): void {
    const held = this.remove(deviceId) ?? [];
    held.push(...updates);
    if (held.length > this.maxUpdatesPerDevice) {
      const over = held.length - this.maxUpdatesPerDevice;
      this.drop(deviceId, held.splice(0, over), 'per-device limit');
    }
    if (first) {
      const rest = [...this.#devices];
      this.#devices.clear();
      this.#devices.set(deviceId, held);
      for (const [other, otherUpdates] of rest) this.#devices.set(other, otherUpdates);
    } else {
      this.#devices.set(deviceId, held);
    }
    this.#count += held.length;
    while (this.#count > this.maxBuffered) {
      const [oldest, oldestUpdates] = this.#devices.entries().next().value as [string, string[]];
      const over = Math.min(oldestUpdates.length, this.#count - this.maxBuffered);
      const dropped = oldestUpdates.splice(0, over);
      this.#count -= over;
      if (oldestUpdates.length === 0) this.#devices.delete(oldest);
      this.drop(oldest, dropped, 'local buffer limit');
    }
  }

  /** Takes a device's buffered updates out of the buffer; undefined when it has none. */
  remove(deviceId: string): string[] | undefined {
    const held = this.#devices.get(deviceId);
    if (!held) return undefined;
    this.#devices.delete(deviceId);
    this.#count -= held.length;
    return held;
  }

  clear(): void {
    this.#devices.clear();
    this.#count = 0;
  }
}
