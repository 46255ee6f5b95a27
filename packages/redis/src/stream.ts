import { IdstitchError, type OutgoingMessage } from '@idstitch/core';
import type { Redis } from 'ioredis';
import { nonEmptyName, positiveInteger, resolvePrefix } from './options.js';

/** Where the outbox lives; shared by the producer ({@link RedisOutbox}) and the workers. */
export interface OutboxStreamOptions {
  /** Key prefix, as for the identity store. The stream is `<prefix>outbox`. Default `'idstitch:'`. */
  prefix?: string;
  /** The stream's full key, instead of `<prefix>outbox`. */
  stream?: string;
  /** The consumer group every worker reads through. Default `'idstitch-delivery'`. */
  group?: string;
  /**
   * Undelivered messages the stream may hold before it is reported (`queue_overflow` to `onError`,
   * and `stats().backlogOver`). Nothing is ever trimmed: an entry leaves the stream only once Mixpanel
   * accepted it (or refused it for good). Default 100 000.
   */
  maxStreamLength?: number;
}

export interface ResolvedStream {
  stream: string;
  group: string;
  maxStreamLength: number;
}

export const DEFAULT_GROUP = 'idstitch-delivery';

export function resolveStream(options: OutboxStreamOptions): ResolvedStream {
  const prefix = resolvePrefix(options.prefix);
  return {
    stream: nonEmptyName(options.stream, 'stream', `${prefix}outbox`),
    group: nonEmptyName(options.group, 'group', DEFAULT_GROUP),
    maxStreamLength: positiveInteger(options.maxStreamLength, 'maxStreamLength', 100_000),
  };
}

/** The one field of an entry: the message as JSON (`{ kind, payload }`, as the tracker produced it). */
export const MESSAGE_FIELD = 'm';

export function encodeMessage(message: OutgoingMessage): string {
  return JSON.stringify({ kind: message.kind, payload: message.payload });
}

/** Reads an entry's message; undefined when the entry is not one of ours or is damaged. */
export function decodeMessage(fields: readonly string[] | null | undefined): OutgoingMessage | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== MESSAGE_FIELD) continue;
    try {
      const parsed = JSON.parse(fields[i + 1] as string) as OutgoingMessage;
      const kind = (parsed as { kind?: unknown }).kind;
      if ((kind === 'event' || kind === 'profile' || kind === 'group') && parsed.payload) return parsed;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** One stream entry as ioredis returns it: `[id, [field, value, ...]]` (fields null when deleted). */
export type StreamEntry = [id: string, fields: string[] | null];

/** Entries of an `XREADGROUP` reply for one stream: `[[stream, entries]]` or null. */
export function entriesOfRead(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const first = reply[0] as [string, StreamEntry[]] | undefined;
  return Array.isArray(first?.[1]) ? first[1] : [];
}

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

/**
 * Watches the stream's length against `maxStreamLength`: reports once when it goes over, and once
 * when it is back under half (so a length hovering at the bound is not reported on every check).
 */
export class BacklogMonitor {
  #over = false;
  #length: number | undefined;

  constructor(
    private readonly stream: string,
    private readonly max: number,
    private readonly report: (error: IdstitchError) => void,
  ) {}

  get length(): number | undefined {
    return this.#length;
  }

  get over(): boolean {
    return this.#over;
  }

  observe(length: number): void {
    this.#length = length;
    if (!this.#over && length > this.max) {
      this.#over = true;
      this.report(
        new IdstitchError(
          'queue_overflow',
          `the outbox stream ${this.stream} holds ${length} undelivered messages, over maxStreamLength ` +
            `${this.max}; nothing is trimmed. Check that delivery workers run and Mixpanel accepts them.`,
          {
            details: {
              state: 'started',
              stream: this.stream,
              streamLength: length,
              maxStreamLength: this.max,
            },
          },
        ),
      );
    } else if (this.#over && length <= this.max / 2) {
      this.#over = false;
      this.report(
        new IdstitchError(
          'queue_overflow',
          `the outbox stream ${this.stream} is back to ${length} undelivered messages`,
          {
            details: {
              state: 'stopped',
              stream: this.stream,
              streamLength: length,
              maxStreamLength: this.max,
            },
          },
        ),
      );
    }
  }
}
