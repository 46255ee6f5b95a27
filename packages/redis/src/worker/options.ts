import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type IdstitchError,
  IdstitchOptionsError,
  type MixpanelSink,
  type MixpanelSinkOptions,
  type MixpanelSinkStats,
} from '@idstitch/core';
import type { RedisConnection } from '../connection.js';
import { nonEmptyName, optionalFunction, positiveInteger } from '../options.js';
import { type OutboxStreamOptions, type ResolvedStream, resolveStream } from '../stream/layout.js';

export interface OutboxWorkerOptions extends OutboxStreamOptions {
  /** Where Redis is: a `redis://` URL, ioredis options, or an ioredis client (duplicated, never used). */
  redis: RedisConnection;
  /**
   * How to deliver: the options of a {@link MixpanelSink} (token, credentials, host, batching, retry).
   * The worker delivers through a `MixpanelSink`, so batching, gzip, retries with backoff and
   * `Retry-After`, strict-mode partial success, 401/403 pauses and 413 splits follow the same rules
   * as without Redis. `handleSignals` is ignored: the worker's owner closes it.
   */
  mixpanel: MixpanelSinkOptions;
  /** This worker's name in the consumer group. Default `<hostname>-<pid>-<random>`, unique per start. */
  consumer?: string;
  /**
   * An entry read by a worker and not acknowledged for this long is taken over by another worker
   * (`XAUTOCLAIM`): that is how the entries of a crashed worker get delivered. A live worker renews
   * its entries well before this, however long Mixpanel keeps it retrying. Default 60 000 ms.
   */
  claimIdleMs?: number;
  /** How often to look for entries to take over. Default `claimIdleMs / 2`, at most 30 s. */
  claimIntervalMs?: number;
  /** Entries read per `XREADGROUP`. Default 500. */
  readCount?: number;
  /** How long one read waits for new entries, in ms. Default 2000. */
  blockMs?: number;
  /**
   * Entries this worker holds at once (read and not yet acknowledged); reading pauses above it.
   * Default 5000.
   */
  maxInFlight?: number;
  /** Serialised bytes this worker holds at once; reading pauses above it. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** A Redis command not answered within this fails (and is retried). Default 5000 ms. */
  commandTimeoutMs?: number;
  /** Timeout of `close()` when called without one. Default 10 000 ms. */
  closeTimeoutMs?: number;
  /**
   * Receives every fault: Redis unreachable and back (`delivery_failed` with `details.state`), damaged
   * entries, a stream over `maxStreamLength` (`queue_overflow`), and everything the Mixpanel sink
   * reports. Default: `console.warn` of the message.
   */
  onError?: (error: IdstitchError) => void;
}

/** Counters of an {@link OutboxWorker}. */
export interface OutboxWorkerStats {
  /** New entries read from the stream. */
  read: number;
  /** Entries taken over from another (dead or stuck) consumer, or from this one after a failure. */
  claimed: number;
  /** Entries Mixpanel accepted; acknowledged and deleted from the stream. */
  delivered: number;
  /** Entries Mixpanel refused for good, or damaged; acknowledged and deleted (and reported). */
  rejected: number;
  /** Entries given up for now (retries ran out, shutdown, credentials refused); left pending, claimed again later. */
  released: number;
  /** Entries acknowledged (`XACK` + `XDEL`). */
  acked: number;
  /** Entries held right now: handed to the sink or waiting for their acknowledgement. */
  inFlight: number;
  /** The stream's length at the last check, undelivered entries included. */
  streamLength: number | undefined;
  /** Whether the stream is over `maxStreamLength`. */
  backlogOver: boolean;
  /** Whether the last Redis command failed. */
  redisDown: boolean;
  /** The Mixpanel sink's own counters. */
  sink: MixpanelSinkStats;
}

/** An {@link OutboxWorkerOptions} checked, with every default filled in. */
export interface ResolvedWorkerOptions extends ResolvedStream {
  redis: RedisConnection;
  mixpanel: MixpanelSinkOptions;
  consumer: string;
  claimIdleMs: number;
  claimIntervalMs: number;
  readCount: number;
  blockMs: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  commandTimeoutMs: number;
  closeTimeoutMs: number;
  onError: (error: IdstitchError) => void;
}

/**
 * Checks an {@link OutboxWorkerOptions} and fills in the defaults: the one place they are decided.
 * @throws {IdstitchOptionsError} when an option is invalid; the message names the fix.
 */
export function resolveWorkerOptions(options: OutboxWorkerOptions): ResolvedWorkerOptions {
  if (options === null || typeof options !== 'object') {
    throw new IdstitchOptionsError(
      'options',
      'must be an object',
      "Pass new OutboxWorker({ redis, mixpanel: { token: '…' } }).",
    );
  }
  if (options.mixpanel === null || typeof options.mixpanel !== 'object') {
    throw new IdstitchOptionsError(
      'mixpanel',
      'is required: the worker delivers to Mixpanel with these MixpanelSink options',
      'Pass mixpanel: { token, serviceAccount, projectId } (the same options as new MixpanelSink()).',
    );
  }
  const stream = resolveStream(options);
  const consumer = nonEmptyName(
    options.consumer,
    'consumer',
    `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
  );
  const claimIdleMs = positiveInteger(options.claimIdleMs, 'claimIdleMs', 60_000, 100);
  return {
    ...stream,
    redis: options.redis,
    mixpanel: options.mixpanel,
    consumer,
    claimIdleMs,
    claimIntervalMs: positiveInteger(
      options.claimIntervalMs,
      'claimIntervalMs',
      Math.min(Math.ceil(claimIdleMs / 2), 30_000),
      10,
    ),
    readCount: positiveInteger(options.readCount, 'readCount', 500, 1, 10_000),
    blockMs: positiveInteger(options.blockMs, 'blockMs', 2000, 1, 60_000),
    maxInFlight: positiveInteger(options.maxInFlight, 'maxInFlight', 5000),
    maxInFlightBytes: positiveInteger(options.maxInFlightBytes, 'maxInFlightBytes', 8 * 1024 * 1024),
    closeTimeoutMs: positiveInteger(options.closeTimeoutMs, 'closeTimeoutMs', 10_000, 0),
    commandTimeoutMs: positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 5000),
    onError: optionalFunction(options.onError, 'onError') ?? ((error) => console.warn(error.message)),
  };
}
