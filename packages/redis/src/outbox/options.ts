import {
  type DropReason,
  type IdstitchError,
  IdstitchOptionsError,
  type MixpanelSinkOptions,
} from '@idstitch/core';
import type { RedisConnection } from '../connection.js';
import { optionalFunction, positiveInteger } from '../options.js';
import { type OutboxStreamOptions, type ResolvedStream, resolveStream } from '../stream/layout.js';
import type { OutboxWorkerOptions, OutboxWorkerStats } from '../worker/options.js';

/** Options of the worker that {@link RedisOutbox} runs in this process (everything but the shared ones). */
export type InProcessWorkerOptions = Omit<
  OutboxWorkerOptions,
  'redis' | 'prefix' | 'stream' | 'group' | 'maxStreamLength' | 'mixpanel' | 'onError'
>;

export interface RedisOutboxOptions extends OutboxStreamOptions {
  /** Where Redis is: a `redis://` URL, ioredis options, or an ioredis client (duplicated, never used). */
  redis: RedisConnection;
  /**
   * Mixpanel options (as for `new MixpanelSink()`) of the worker this process runs. Required unless
   * `worker: false`.
   */
  mixpanel?: MixpanelSinkOptions;
  /**
   * Run a delivery worker in this process: `true` (default), worker options, or `false` when workers
   * run as their own processes (`idstitch-outbox-worker`).
   */
  worker?: boolean | InProcessWorkerOptions;
  /**
   * Messages kept in this process while Redis is unreachable; they are appended as soon as it answers.
   * Past it, new messages are dropped (`queue_overflow`, reported once per episode). Default 10 000.
   */
  maxBufferedMessages?: number;
  /** Serialised bytes kept in this process while Redis is unreachable. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** Messages appended per round trip (one script of `XADD`s). Default 500. */
  appendBatchSize?: number;
  /**
   * How long `flush()` waits for an unreachable Redis before it resolves anyway (the messages stay
   * buffered and keep being retried). Default 10 000 ms.
   */
  flushTimeoutMs?: number;
  /** Timeout of `close()` when called without one. Default 10 000 ms. */
  closeTimeoutMs?: number;
  /** A Redis command not answered within this fails (and is retried). Default 5000 ms. */
  commandTimeoutMs?: number;
  /**
   * Receives every fault: invalid messages, Redis unreachable and back (`delivery_failed` with
   * `details.state`), the local buffer full (`queue_overflow`), the stream over `maxStreamLength`
   * (`queue_overflow`), and everything the in-process worker reports. Default: `console.warn`.
   */
  onError?: (error: IdstitchError) => void;
}

/**
 * Counters of a {@link RedisOutbox}. At every moment `tracked = appended + droppedTotal + buffered`;
 * after `flush()` with Redis reachable, `buffered` is 0.
 */
export interface RedisOutboxStats {
  /** Messages written, plus drops the producer recorded with `recordDrop()` (consent, ...). */
  tracked: number;
  /** Messages appended to the stream. */
  appended: number;
  /** Messages waiting in this process to be appended. */
  buffered: number;
  bufferedBytes: number;
  /** Messages dropped before they reached the stream, by reason. */
  dropped: Record<DropReason, number>;
  droppedTotal: number;
  /** The stream's length at the last append, undelivered entries of every instance included. */
  streamLength: number | undefined;
  /** Whether the stream is over `maxStreamLength`. */
  backlogOver: boolean;
  /** Whether the last append failed because Redis was unreachable. */
  redisDown: boolean;
  /** The in-process worker's counters, when it runs. */
  worker: OutboxWorkerStats | undefined;
}

/** A {@link RedisOutboxOptions} checked, with every default filled in. */
export interface ResolvedOutboxOptions extends ResolvedStream {
  redis: RedisConnection;
  /** The in-process worker's own options and its Mixpanel options, or false when it runs elsewhere. */
  worker: { options: InProcessWorkerOptions; mixpanel: MixpanelSinkOptions } | false;
  maxBufferedMessages: number;
  maxBufferedBytes: number;
  appendBatchSize: number;
  flushTimeoutMs: number;
  closeTimeoutMs: number;
  commandTimeoutMs: number;
  onError: (error: IdstitchError) => void;
}

/**
 * Checks a {@link RedisOutboxOptions} and fills in the defaults: the one place they are decided (the
 * in-process worker's own options are checked by the worker).
 * @throws {IdstitchOptionsError} when an option is missing or invalid; the message names the fix.
 */
export function resolveOutboxOptions(options: RedisOutboxOptions): ResolvedOutboxOptions {
  if (options === null || typeof options !== 'object') {
    throw new IdstitchOptionsError(
      'options',
      'must be an object',
      "Pass new RedisOutbox({ redis: process.env.REDIS_URL, mixpanel: { token: '…' } }).",
    );
  }
  const stream = resolveStream(options);
  const resolved = {
    ...stream,
    redis: options.redis,
    maxBufferedMessages: positiveInteger(options.maxBufferedMessages, 'maxBufferedMessages', 10_000),
    maxBufferedBytes: positiveInteger(options.maxBufferedBytes, 'maxBufferedBytes', 16 * 1024 * 1024, 1024),
    appendBatchSize: positiveInteger(options.appendBatchSize, 'appendBatchSize', 500, 1, 10_000),
    flushTimeoutMs: positiveInteger(options.flushTimeoutMs, 'flushTimeoutMs', 10_000, 0),
    closeTimeoutMs: positiveInteger(options.closeTimeoutMs, 'closeTimeoutMs', 10_000, 0),
    commandTimeoutMs: positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 5000),
    onError:
      optionalFunction(options.onError, 'onError') ?? ((error: IdstitchError) => console.warn(error.message)),
  };
  const worker = options.worker ?? true;
  if (worker === false) return { ...resolved, worker: false };
  if (options.mixpanel === undefined) {
    throw new IdstitchOptionsError(
      'mixpanel',
      'is required when the outbox runs its delivery worker in this process (the default)',
      'Pass mixpanel: { token, serviceAccount, projectId }, or worker: false and run `idstitch-outbox-worker`.',
    );
  }
  return { ...resolved, worker: { options: worker === true ? {} : worker, mixpanel: options.mixpanel } };
}
