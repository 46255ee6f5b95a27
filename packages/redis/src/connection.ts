import { IdstitchOptionsError } from '@idstitch/core';
import { Redis, type RedisOptions } from 'ioredis';
import { forgetConnectionError, rememberConnectionError } from './faults.js';

/**
 * Where Redis is: a `redis://` URL, ioredis options, or an ioredis client. idstitch never sends its
 * commands over a client it is given: it opens its own connections with `client.duplicate()` (same
 * host, auth, TLS and database), so your client's settings and blocking reads never interfere, and
 * `close()` ends only what idstitch opened.
 */
export type RedisConnection = Redis | RedisOptions | string;

/**
 * What idstitch changes on the connections it opens. While Redis is unreachable a command fails at
 * once instead of waiting in ioredis's unbounded offline queue; each component keeps its own bounded
 * buffer and retries. A command cut off by a lost connection is not resent by ioredis either: a
 * resent `take` could remove held updates after idstitch already gave up on it.
 */
const OVERRIDES: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  // How long a closing socket may wait for a frozen peer before it is destroyed (ioredis's default of
  // 2 s would hold the process open past close()'s deadline).
  disconnectTimeout: 100,
};

/**
 * Reconnects after 50 ms, doubling to at most 1 s (ioredis's default goes to 5 s): the outbox and the
 * identity store buffer while Redis is away, so getting back quickly is what matters. Applies only
 * when idstitch builds the client from a URL or options without their own `retryStrategy`.
 */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 10), 1000);
}

/** Opens a connection of idstitch's own to `source`, named in `CLIENT LIST` as `idstitch:<role>`. */
export function openRedis(source: RedisConnection, role: string, commandTimeoutMs: number): Redis {
  const overrides: RedisOptions = {
    ...OVERRIDES,
    connectionName: `idstitch:${role}`,
    commandTimeout: commandTimeoutMs,
  };
  let redis: Redis;
  if (source instanceof Redis) redis = source.duplicate(overrides);
  else if (typeof source === 'string') redis = new Redis(source, { retryStrategy, ...overrides });
  else if (source !== null && typeof source === 'object') {
    redis = new Redis({ retryStrategy, ...source, ...overrides });
  } else {
    throw new IdstitchOptionsError(
      'redis',
      `must be a redis:// URL, ioredis options or an ioredis client, got ${typeof source}`,
      "Pass redis: process.env.REDIS_URL (e.g. 'redis://127.0.0.1:6379').",
    );
  }
  // Without a listener ioredis prints every connection error; idstitch reports outages through onError,
  // naming the cause the connection gave (a refused password, a refused connection) rather than the
  // "Stream isn't writeable" that commands get while it is not connected.
  redis.on('error', (error: Error) => rememberConnectionError(redis, error));
  redis.on('ready', () => {
    connectedOnce.add(redis);
    forgetConnectionError(redis);
  });
  return redis;
}

/** Connections that have been ready at least once. */
const connectedOnce = new WeakSet<Redis>();

/**
 * Waits until a connection that was never ready yet is, at most `ms`: the first commands after a boot
 * must not count as an outage while the connection is still being made. Once it has been ready,
 * returns at once: during an outage commands fail fast and each component buffers.
 */
export function whenReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready' || connectedOnce.has(redis) || ms <= 0) return Promise.resolve();
  // One listener per connection however many callers wait (a request flood during a boot outage would
  // otherwise add one each and trip MaxListenersExceededWarning).
  let waiting = readyWaits.get(redis);
  if (!waiting) {
    waiting = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        redis.off('ready', done);
        readyWaits.delete(redis);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      redis.once('ready', done);
    });
    readyWaits.set(redis, waiting);
  }
  return waiting;
}

const readyWaits = new WeakMap<Redis, Promise<void>>();

/**
 * Ends a connection idstitch opened by `deadline` (a `Date.now()` time): sends QUIT and waits for its
 * answer until then, and cuts the connection (`disconnect()`) when Redis is away, frozen or late, so a
 * stalled Redis cannot hold `close()` past its deadline. Never rejects.
 */
export async function closeRedis(redis: Redis, deadline: number): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready' || deadline <= Date.now()) {
    redis.disconnect();
    return;
  }
  const answered = await Promise.race([
    redis.quit().then(
      () => true,
      () => false,
    ),
    sleep(deadline - Date.now()).then(() => false),
  ]);
  if (!answered) redis.disconnect();
}

/** A sleep that ends early (resolving) when `signal` aborts, and never holds the process open. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A backoff wait before retrying a command on `redis`: ends after `ms`, when `signal` aborts, or as soon
 * as the connection is ready again, so that recovery does not wait out the rest of the backoff.
 */
export function retryPause(redis: Redis, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    redis.once('ready', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff from `minMs` doubling to `maxMs`, for reconnect-style retries. */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 20));
}
