/**
 * Fault diagnosis: what a failed Redis command means (a refused password, out of memory, a missing ACL
 * permission, an unreachable or stalled server), and reporting an outage once when it starts and once
 * when it ends.
 */
import type { IdstitchError } from '@idstitch/core';
import type { Redis } from 'ioredis';

/** The last error a connection itself reported (refused, auth failed), until it is ready again. */
const lastConnectionError = new WeakMap<Redis, Error>();

/** Keeps the error a connection reported, so a later "not connected" failure is named by its real cause. */
export function rememberConnectionError(redis: Redis, error: Error): void {
  lastConnectionError.set(redis, error);
}

/** Forgets a connection's error once it is ready again. */
export function forgetConnectionError(redis: Redis): void {
  lastConnectionError.delete(redis);
}

/**
 * Where a connection goes, as a URL without credentials: `redis://host:port`, `rediss://` with TLS,
 * `/db` when not 0, or the Unix socket path. Safe to log.
 */
export function safeRedisUrl(redis: Redis): string {
  const options = redis.options;
  if (options.path) return `unix://${options.path}`;
  const scheme = options.tls ? 'rediss' : 'redis';
  const host = (options.host ?? '127.0.0.1').includes(':') ? `[${options.host}]` : options.host;
  const db = options.db ? `/${options.db}` : '';
  return `${scheme}://${host}:${options.port ?? 6379}${db}`;
}

/** What kind of fault a Redis failure is: the server unreachable, or answering but refusing. */
export type RedisFaultKind = 'unreachable' | 'auth' | 'oom' | 'noperm' | 'timeout' | 'other';

export interface RedisFault {
  kind: RedisFaultKind;
  /** The cause in words, with the URL (no credentials), e.g. `authentication failed (WRONGPASS) for redis://h:6379`. */
  description: string;
  /** The error that says what happened (the connection's own when a command only saw "not connected"). */
  error: unknown;
}

const NOT_CONNECTED =
  /Stream isn't writeable|Connection is closed|enableOfflineQueue|Reached the max retries/i;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Names the real cause of a failed command on `redis`: a wrong password, out of memory, a missing ACL
 * permission, a refused connection or a stalled server, always with the URL (without credentials).
 */
export function describeRedisFault(redis: Redis, error: unknown): RedisFault {
  const url = safeRedisUrl(redis);
  let cause = error;
  const connection = lastConnectionError.get(redis);
  if (connection && NOT_CONNECTED.test(errorMessage(error))) cause = connection;
  const message = errorMessage(cause);
  const code = codeOf(cause);
  if (
    /^(WRONGPASS|NOAUTH)|invalid password|invalid username-password|AUTH.*(fail|without any password)/i.test(
      message,
    )
  ) {
    const word = /^NOAUTH/.test(message) ? 'NOAUTH' : 'WRONGPASS';
    return {
      kind: 'auth',
      description: `authentication failed (${word}) for ${url}: check the password (and user) in the Redis options`,
      error: cause,
    };
  }
  if (/^OOM\b/.test(message)) {
    return {
      kind: 'oom',
      description:
        `Redis at ${url} is out of memory (OOM: used memory is over maxmemory and its eviction policy ` +
        'refuses writes)',
      error: cause,
    };
  }
  if (/^NOPERM\b/.test(message)) {
    return {
      kind: 'noperm',
      description: `the Redis user has no permission for a command idstitch needs (NOPERM) at ${url}: ${message}`,
      error: cause,
    };
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET') {
    const what =
      code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ECONNRESET'
          ? 'connection reset'
          : 'host not found';
    return { kind: 'unreachable', description: `${what} (${code}) at ${url}`, error: cause };
  }
  if (/Command timed out/i.test(message)) {
    return {
      kind: 'timeout',
      description: `no answer in time from ${url} (Redis stalled or overloaded)`,
      error: cause,
    };
  }
  if (NOT_CONNECTED.test(message) || code === 'ETIMEDOUT' || /connect ETIMEDOUT/.test(message)) {
    return { kind: 'unreachable', description: `not connected to ${url} (${message})`, error: cause };
  }
  return { kind: 'other', description: `${message} (${url})`, error: cause };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Hands `error` to an app hook; a failing hook must not break tracking or delivery. */
export function reportSafely(onError: (error: IdstitchError) => void, error: IdstitchError): void {
  try {
    onError(error);
  } catch {
    // Swallowed on purpose: the hook is the app's, the caller is on our hot path.
  }
}

/** Whether Redis answers, reporting each outage once when it starts and once when it ends, never per command. */
export class RedisOutage {
  #down = false;

  constructor(private readonly report: (error: IdstitchError) => void) {}

  get down(): boolean {
    return this.#down;
  }

  began(describe: () => IdstitchError): void {
    if (this.#down) return;
    this.#down = true;
    this.report(describe());
  }

  ended(describe: () => IdstitchError): void {
    if (!this.#down) return;
    this.#down = false;
    this.report(describe());
  }
}

/**
 * What a failed command means for the data it carried:
 * - `'not_run'`: it never reached Redis (not connected, connection refused) or Redis answered with an
 *   error (a refused script, OOM, NOSCRIPT): nothing of it was applied, or the script says what was.
 * - `'in_doubt'`: it was sent and no answer came (a timeout, the connection cut while it was out). A
 *   stalled Redis may still run it when it wakes up, so a retry must carry the same operation IDs (see
 *   the receipts in `lua/held.ts` and the producer numbers in `lua/append.ts`), and data given up now
 *   is counted as `in_doubt`, not as lost.
 *
 * Anything not known to be `'not_run'` is `'in_doubt'`: the safe side.
 */
export type CommandFailure = 'not_run' | 'in_doubt';

/**
 * Rejections of commands that were never written to Redis: ioredis refuses a command at once while it is
 * not connected (no offline queue). Not "Reached the max retries per request limit": with
 * `maxRetriesPerRequest: 0` that is how ioredis rejects every command that was out, sent and unanswered,
 * when the connection closes, and Redis may well have run it.
 */
const NOT_SENT = /Stream isn't writeable|enableOfflineQueue/i;

export function classifyFailure(error: unknown): CommandFailure {
  // ioredis's ReplyError: Redis answered, so the command ran to its end (or never started).
  if (error instanceof Error && error.name === 'ReplyError') return 'not_run';
  const code = codeOf(error);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'not_run';
  if (NOT_SENT.test(errorMessage(error))) return 'not_run';
  return 'in_doubt';
}
