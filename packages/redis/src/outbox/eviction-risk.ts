import type { Redis } from 'ioredis';

/** What decides whether Redis may evict keys, as `INFO memory` reports it. */
export interface EvictionSettings {
  /** `maxmemory` in bytes; 0 means no limit, so nothing is evicted. */
  maxmemory: number;
  /** `maxmemory-policy`, e.g. `noeviction`, `allkeys-lru`, `volatile-ttl`. */
  policy: string;
}

/**
 * Reads Redis's eviction settings from `INFO memory` (which managed services allow where `CONFIG` is
 * refused); undefined when INFO is refused or does not say.
 */
export async function readEvictionSettings(redis: Redis): Promise<EvictionSettings | undefined> {
  try {
    const info = await redis.info('memory');
    const maxmemory = /^maxmemory:(\d+)/m.exec(info)?.[1];
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (maxmemory === undefined || policy === undefined) return undefined;
    return { maxmemory: Number(maxmemory), policy };
  } catch {
    return undefined;
  }
}

/**
 * Whether Redis may evict keys of the outbox when it is full: with any policy but `noeviction`, an
 * `allkeys-*` policy may evict the stream (undelivered messages gone without a trace), and a `volatile-*`
 * one the producers' append markers (they have a TTL), after which a retried append lands twice.
 */
export function mayEvict(settings: EvictionSettings): boolean {
  return settings.maxmemory > 0 && settings.policy !== 'noeviction';
}
