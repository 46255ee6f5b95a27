import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { APPEND_SCRIPT } from '../lua/append.js';
import { MESSAGE_FIELD } from '../stream/layout.js';

/** How long a producer's last appended number is kept: far longer than any retry can be delayed. */
const PRODUCER_TTL_MS = 24 * 60 * 60 * 1000;

interface AppendingRedis extends Redis {
  idstitchAppend(
    stream: string,
    producerKey: string,
    group: string,
    ttlMs: number,
    field: string,
    ...seqAndJson: (string | number)[]
  ): Promise<[number, number, string | false | null]>;
}

export interface AppendResult {
  /** How many of the given messages, from the first, are in the stream now. */
  handled: number;
  /** The stream's length after the append. */
  length: number;
  /** Why the rest were not appended (Redis's error, e.g. OOM), if any. */
  error: Error | undefined;
}

/**
 * One producer's appends to one stream, exactly once however often an append is repeated (see
 * {@link APPEND_SCRIPT}): a command that timed out on the client may still run when a stalled Redis
 * wakes up, and Mixpanel applies every `/engage` update it receives, so a repeated `$add` would count twice.
 */
export class StreamAppender {
  readonly #redis: AppendingRedis;
  readonly #producerKey: string;

  constructor(
    redis: Redis,
    readonly stream: string,
    readonly group: string,
  ) {
    redis.defineCommand('idstitchAppend', { numberOfKeys: 2, lua: APPEND_SCRIPT });
    this.#redis = redis as AppendingRedis;
    this.#producerKey = `${stream}:producer:${randomBytes(8).toString('hex')}`;
  }

  /** Appends `items` (numbered in increasing order); repeating a call never appends a message twice. */
  async append(items: readonly { seq: number; json: string }[]): Promise<AppendResult> {
    const args: (string | number)[] = [];
    for (const item of items) args.push(item.seq, item.json);
    const [handled, length, failure] = await this.#redis.idstitchAppend(
      this.stream,
      this.#producerKey,
      this.group,
      PRODUCER_TTL_MS,
      MESSAGE_FIELD,
      ...args,
    );
    return { handled, length, error: failure ? new Error(String(failure)) : undefined };
  }
}
