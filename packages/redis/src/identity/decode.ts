import type { HeldProfileUpdate } from '@idstitch/core';

/** What a take read from Redis and this process's buffer, decoded. */
export interface DecodedHeld {
  /** The updates to apply, oldest first. */
  updates: HeldProfileUpdate[];
  /** Updates held longer than `maxAgeMs`, left out. */
  expired: number;
  /** Why entries were skipped: not valid JSON (each one to report). */
  unreadable: unknown[];
}

/**
 * Decodes held entries (`{ i: id, u: update }` JSON, or a bare update written by an older version),
 * keeping each entry ID once (a hold that timed out but ran, then was written again from the local
 * buffer, is in Redis twice) and leaving out updates held before `cutoff`.
 */
export function decodeHeld(raw: readonly string[], cutoff: number): DecodedHeld {
  const updates: HeldProfileUpdate[] = [];
  const unreadable: unknown[] = [];
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
      unreadable.push(error);
      continue;
    }
    if (typeof update.heldAt === 'number' && update.heldAt < cutoff) expired += 1;
    else updates.push(update);
  }
  // Stable: Redis order first, then this process's buffer, each already oldest first.
  updates.sort((a, b) => (a.heldAt ?? 0) - (b.heldAt ?? 0));
  return { updates, expired, unreadable };
}
