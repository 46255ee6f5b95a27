import { IdstitchOptionsError } from '@idstitch/core';
import type { IdMergeMode } from '../resolver.js';
import { RecordsBuilder } from './records.js';
import type { RecordSource } from './source.js';

export interface RedisOutboxSourceOptions {
  /** Where Redis is: a `redis://` or `rediss://` URL. */
  redis: string;
  /** The outbox stream's key. Default: the one `RedisOutbox` uses with `prefix` (`idstitch:outbox`). */
  stream?: string;
  /** The `prefix` given to `RedisOutbox`, when `stream` is not given. Default `idstitch:`. */
  prefix?: string;
  /** The ID Merge API to resolve with. Default: guessed from the messages. */
  mode?: IdMergeMode;
  /** Longest wait of one blocking `XREAD` while watching, in ms (1-10 000). Default 1000. */
  blockMs?: number;
  /** Most entries read per snapshot (the oldest first). Default 100 000. */
  maxEntries?: number;
}

/** Said on every snapshot of an outbox: what it can and cannot show. */
export const OUTBOX_NOTICE =
  'The Redis outbox holds only what is not delivered yet: workers delete an entry once Mixpanel accepted ' +
  'it, so delivered messages are not shown; messages an app still buffers in memory are not shown either.';

/** The part of an ioredis client the source uses (ioredis is an optional peer dependency). */
interface RedisLike {
  xrange(key: string, start: string, end: string, count: 'COUNT', n: number): Promise<[string, string[]][]>;
  xread(...args: (string | number)[]): Promise<[string, [string, string[]][]][] | null>;
  xlen(key: string): Promise<number>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}
interface RedisModules {
  Redis: new (url: string, options: Record<string, unknown>) => RedisLike;
  outboxStreamKey(options: { prefix?: string; stream?: string }): string;
  field: string;
}

const PAGE = 1000;

/** Imports an optional peer dependency; a missing one is an options error naming what to install. */
export async function importOptional<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ||
      /Cannot find (module|package)/.test(String(error))
    ) {
      throw new IdstitchOptionsError(
        'redis',
        `needs the ${name} package, which is not installed`,
        'Install it beside @idstitch/inspector: npm install @idstitch/redis ioredis',
      );
    }
    throw error;
  }
}

/** Loads `ioredis` and `@idstitch/redis` only when a Redis source is used: the inspector works without them. */
async function loadRedis(): Promise<RedisModules> {
  const [client, layout] = await Promise.all([
    importOptional<{ Redis: RedisModules['Redis'] }>('ioredis'),
    importOptional<{
      outboxStreamKey: RedisModules['outboxStreamKey'];
      OUTBOX_STREAM_LAYOUT: { messageField: string };
    }>('@idstitch/redis'),
  ]);
  return {
    Redis: client.Redis,
    outboxStreamKey: layout.outboxStreamKey,
    field: layout.OUTBOX_STREAM_LAYOUT.messageField,
  };
}

function checkOptions(options: RedisOutboxSourceOptions): { blockMs: number; maxEntries: number } {
  const url = options.redis;
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
    throw new IdstitchOptionsError(
      'redis',
      `must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`,
      "Pass the Redis your outbox uses, e.g. 'redis://127.0.0.1:6379' (idstitch inspect --redis <url>)",
    );
  }
  for (const name of ['stream', 'prefix'] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'string' || value.trim() === '' || /\s/.test(value))) {
      throw new IdstitchOptionsError(
        name,
        `must be a non-empty key name without spaces, got ${JSON.stringify(value)}`,
        `Pass the ${name} your RedisOutbox uses, or leave it out for the default (idstitch:outbox)`,
      );
    }
  }
  const integer = (name: 'blockMs' | 'maxEntries', fallback: number, max: number): number => {
    const value = options[name];
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new IdstitchOptionsError(
        name,
        `must be an integer from 1 to ${max}, got ${String(value)}`,
        `Leave it out for ${fallback}`,
      );
    }
    return value;
  };
  return {
    blockMs: integer('blockMs', 1000, 10_000),
    maxEntries: integer('maxEntries', 100_000, 10_000_000),
  };
}

/**
 * Reads a `RedisOutbox` stream as it is now: every entry not yet delivered, marked pending, with `XRANGE`;
 * watches it with a blocking `XREAD` (at most `blockMs` per call) on a connection of its own. Read-only: it
 * never joins the workers' consumer group, never acknowledges or deletes, so the workers deliver exactly as
 * without it. Needs `ioredis` and `@idstitch/redis` installed (optional peer dependencies).
 *
 * @throws IdstitchOptionsError at once when an option is invalid.
 */
export function redisOutboxSource(options: RedisOutboxSourceOptions): RecordSource {
  const { blockMs, maxEntries } = checkOptions(options);
  const url = options.redis;
  let shown = url;
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.username = '';
    shown = parsed.toString();
  } catch {
    // Left as given; checkOptions accepted its scheme.
  }
  let modules: Promise<RedisModules> | undefined;
  let reader: RedisLike | undefined;
  let closed = false;
  const open = async (): Promise<{ redis: RedisLike; key: string; field: string }> => {
    modules ??= loadRedis();
    const loaded = await modules;
    const key = loaded.outboxStreamKey({
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      ...(options.stream === undefined ? {} : { stream: options.stream }),
    });
    reader ??= connect(loaded, 'inspector');
    return { redis: reader, key, field: loaded.field };
  };
  const connect = (loaded: RedisModules, role: string): RedisLike => {
    const redis = new loaded.Redis(url, {
      connectionName: `idstitch:${role}`,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    });
    // Failures surface as rejected reads (shown in the page); without a listener ioredis prints each one.
    redis.on('error', () => {});
    return redis;
  };
  const which =
    options.stream !== undefined
      ? ` (${options.stream})`
      : options.prefix !== undefined
        ? ` (prefix ${options.prefix})`
        : '';
  const label = `Redis outbox at ${shown}${which}`;

  return {
    label,
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    async read() {
      const { redis, key, field } = await open();
      const builder = new RecordsBuilder(label);
      let start = '-';
      let read = 0;
      for (;;) {
        const entries = await redis.xrange(key, start, '+', 'COUNT', Math.min(PAGE, maxEntries - read));
        for (const [id, fields] of entries) {
          read += 1;
          const at = fields.indexOf(field);
          const json = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
          if (json === undefined) continue;
          builder.add(json, `Redis outbox ${key}, entry ${id}`, `entry ${id}`);
        }
        const last = entries.at(-1);
        if (last === undefined || entries.length < PAGE) break;
        if (read >= maxEntries) {
          builder.notice(`Only the oldest ${maxEntries} entries of the outbox are shown (maxEntries).`);
          break;
        }
        start = `(${last[0]}`;
      }
      builder.notice(OUTBOX_NOTICE);
      return builder.records;
    },
    watch(onChange) {
      let stopped = false;
      let blocking: RedisLike | undefined;
      const loop = async () => {
        const { key } = await open();
        const loaded = await (modules as Promise<RedisModules>);
        if (stopped || closed) return;
        blocking = connect(loaded, 'inspector-watch');
        let last = '$';
        let length = -1;
        while (!stopped && !closed) {
          try {
            const reply = await blocking.xread('BLOCK', blockMs, 'STREAMS', key, last);
            const entries = reply?.[0]?.[1] ?? [];
            const newest = entries.at(-1);
            if (newest !== undefined) last = newest[0];
            // Delivered entries are deleted, which XREAD does not announce: the length tells.
            const now = await blocking.xlen(key);
            if (entries.length > 0 || now !== length) {
              if (length !== -1 || entries.length > 0) onChange();
              length = now;
            }
          } catch {
            if (stopped || closed) return;
            // Redis away: the next read shows the problem; try again after a pause.
            await new Promise((again) => setTimeout(again, blockMs));
          }
        }
      };
      void loop().catch(() => {});
      return () => {
        stopped = true;
        blocking?.disconnect();
      };
    },
    async close() {
      closed = true;
      const redis = reader;
      reader = undefined;
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
