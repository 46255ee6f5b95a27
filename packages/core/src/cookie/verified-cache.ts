/** Bounds of the verified-cookie cache (`cookie.verifiedCache`). */
export interface VerifiedCacheBounds {
  /** Most entries kept. */
  maxEntries: number;
  /** Most bytes kept, as estimated by {@link entryBytes}. */
  maxBytes: number;
}

/**
 * What one entry costs the heap beyond its strings: the Map slot, the slot object and the cached value's object,
 * rounded up. An estimate, conservative on purpose: the bound must hold on any engine.
 */
const ENTRY_OVERHEAD_BYTES = 160;

/** Estimated retained size of an entry whose key and value strings total `characters` (UTF-16, 2 bytes each). */
export function entryBytes(characters: number): number {
  return ENTRY_OVERHEAD_BYTES + 2 * characters;
}

/**
 * A copy of `text` that holds on to nothing else. A cookie value is cut out of the whole `Cookie` header, and
 * V8 keeps a cut-out string (13 characters or more) as a view of its parent: cached as it is, it would keep every
 * request's entire header alive, far beyond the byte budget. Concatenating makes a new string, which slicing
 * flattens into a fresh copy. Use it for every string an entry keeps.
 */
export function ownCopy(text: string): string {
  return ` ${text}`.slice(1);
}

interface Slot<V> {
  readonly value: V;
  readonly bytes: number;
  /** Used since the clock hand last passed: the entry gets a second chance. */
  referenced: boolean;
}

/**
 * A bounded map of facts that a constant-time HMAC check established, keyed by the exact string that carried the
 * MAC (a device cookie's whole value, a user tag), so that a returning visitor's request skips the HMAC. Only
 * successful verifications are ever stored: a forged or tampered string is never a key, and a string that differs
 * from a stored one in any character (a different signature after the same payload) is a different key, so it
 * misses and is verified in full. The lookup itself is a hash-table probe over the whole string: it takes no
 * longer when more leading characters match, so it tells an attacker nothing about a genuine signature.
 *
 * Bounded in entries and in estimated bytes; eviction is second-chance (CLOCK): the oldest entry leaves unless it
 * was used since it was last considered, in which case it goes to the back with its mark cleared. A returning
 * visitor's entry therefore survives a flood of one-off cookies. One instance belongs to one set of secrets (the
 * codec that owns it), so a rotation, which makes a new codec, starts from an empty cache.
 */
export class VerifiedCache<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private usedBytes = 0;

  constructor(private readonly bounds: VerifiedCacheBounds) {}

  /** Entries held now. */
  get size(): number {
    return this.slots.size;
  }

  /** Estimated bytes held now. */
  get bytes(): number {
    return this.usedBytes;
  }

  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    slot.referenced = true;
    return slot.value;
  }

  /** Stores `value` under `key`, evicting as needed; a value larger than the whole byte budget is not stored. */
  set(key: string, value: V, bytes: number): void {
    const { maxEntries, maxBytes } = this.bounds;
    if (bytes > maxBytes || maxEntries < 1) return;
    const existing = this.slots.get(key);
    if (existing !== undefined) {
      this.slots.delete(key);
      this.usedBytes -= existing.bytes;
    }
    while (this.slots.size >= maxEntries || this.usedBytes + bytes > maxBytes) this.evictOne();
    this.slots.set(key, { value, bytes, referenced: false });
    this.usedBytes += bytes;
  }

  clear(): void {
    this.slots.clear();
    this.usedBytes = 0;
  }

  /** Removes one entry: the hand sweeps from the oldest, clearing marks, until it finds an unmarked one. */
  private evictOne(): void {
    // Terminates: every pass clears the mark of the entry it moves, so the second visit evicts.
    for (;;) {
      const oldest = this.slots.entries().next();
      if (oldest.done === true) return;
      const [key, slot] = oldest.value;
      this.slots.delete(key);
      if (slot.referenced) {
        slot.referenced = false;
        this.slots.set(key, slot);
        continue;
      }
      this.usedBytes -= slot.bytes;
      return;
    }
  }
}
