import { MESSAGE_FIELD, type OutboxStreamOptions, resolveStream } from './stream.js';

/**
 * The field of an outbox stream entry that holds the message, as JSON `{ kind, payload }`. For tools that
 * read the stream without consuming it (the inspector's Redis source); the stream has no other field of ours.
 */
export const OUTBOX_MESSAGE_FIELD: string = MESSAGE_FIELD;

/**
 * The key of the outbox stream that a {@link RedisOutbox} and its workers with these options use:
 * `<prefix>outbox` (default `idstitch:outbox`), or `stream` when given.
 *
 * @throws IdstitchOptionsError when `prefix` or `stream` is not a usable name.
 */
export function outboxStreamKey(options: Pick<OutboxStreamOptions, 'prefix' | 'stream'> = {}): string {
  return resolveStream(options).stream;
}
