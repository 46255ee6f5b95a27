import type { Redis } from 'ioredis';

/**
 * Creates the consumer group (and the stream) if missing, from the stream's start. While Redis is over
 * maxmemory it refuses `XGROUP CREATE` even when the group exists (the producer creates it with the
 * stream), so a refusal is checked against the groups that are there before it counts as a failure.
 */
export async function ensureGroup(redis: Redis, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/BUSYGROUP/.test(message)) return;
    if (/^OOM/.test(message) && (await groupExists(redis, stream, group))) return;
    throw error;
  }
}

async function groupExists(redis: Redis, stream: string, group: string): Promise<boolean> {
  try {
    const groups = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
    return groups.some((fields) => {
      const at = fields.indexOf('name');
      return at >= 0 && fields[at + 1] === group;
    });
  } catch {
    return false;
  }
}

export function isNoGroup(error: unknown): boolean {
  return /NOGROUP/.test(error instanceof Error ? error.message : String(error));
}
