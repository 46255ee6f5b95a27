import type { OutgoingMessage } from '@idstitch/core';
import { DEFAULT_PREFIX, nonEmptyName, positiveInteger, resolvePrefix } from '../options.js';

/**
 * How the outbox lives in Redis, for tools that read it without delivering (the inspector, an
 * operator's `redis-cli`). The stream's key is `<prefix>` + `streamSuffix` (by default
 * `idstitch:outbox`) unless the `stream` option names it. Each entry has one field, `messageField`,
 * whose value is the message as JSON, `{ kind, payload }` (`kind` is `'event'`, `'profile'` or
 * `'group'`; `payload` is what Mixpanel receives). Workers read through the consumer group
 * `defaultGroup` (unless `group` names another) and delete an entry once Mixpanel accepted it or refused
 * it for good, so the stream holds the messages not delivered yet. Read it with `XRANGE`/`XREVRANGE`
 * only: reading through the workers' group would take entries from them.
 */
export const OUTBOX_STREAM_LAYOUT = {
  /** The key prefix when none is given (shared with the identity store). */
  defaultPrefix: DEFAULT_PREFIX,
  /** Appended to the prefix to make the stream's key. */
  streamSuffix: 'outbox',
  /** The one field of every entry: the message as JSON `{ kind, payload }`. */
  messageField: 'm',
  /** The consumer group the workers read through when none is given. */
  defaultGroup: 'idstitch-delivery',
} as const;

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

export const DEFAULT_GROUP = OUTBOX_STREAM_LAYOUT.defaultGroup;

export function resolveStream(options: OutboxStreamOptions): ResolvedStream {
  const prefix = resolvePrefix(options.prefix);
  return {
    stream: nonEmptyName(options.stream, 'stream', `${prefix}${OUTBOX_STREAM_LAYOUT.streamSuffix}`),
    group: nonEmptyName(options.group, 'group', DEFAULT_GROUP),
    maxStreamLength: positiveInteger(options.maxStreamLength, 'maxStreamLength', 100_000),
  };
}

/** The one field of an entry: the message as JSON (`{ kind, payload }`, as the tracker produced it). */
export const MESSAGE_FIELD = OUTBOX_STREAM_LAYOUT.messageField;

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
 * The key of the outbox stream that a {@link RedisOutbox} and its workers with these options use:
 * `<prefix>outbox` (default `idstitch:outbox`), or `stream` when given.
 *
 * @throws IdstitchOptionsError when `prefix` or `stream` is not a usable name.
 */
export function outboxStreamKey(options: Pick<OutboxStreamOptions, 'prefix' | 'stream'> = {}): string {
  return resolveStream(options).stream;
}
