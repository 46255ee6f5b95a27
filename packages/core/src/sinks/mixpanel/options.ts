import type { IdstitchError } from '../../errors.js';
import { IdstitchOptionsError } from '../../errors.js';
import { MIXPANEL_LIMITS } from '../../messages/limits.js';
import type { ResolvedSpoolOptions, SpoolOptions } from '../spool/types.js';

/** Residency by name (`us` → api.mixpanel.com, `eu` → api-eu, `in` → api-in), or any base URL. */
export type MixpanelHost = 'us' | 'eu' | 'in' | (string & {});

/** Where events go. `/import` is authenticated and strict; `/track` only needs the project token. */
export type MixpanelEventEndpoint = 'import' | 'track';

export type { MixpanelEndpoint } from './endpoint.js';

/** What happens to a message that arrives when the queue budget is used up. */
export type MixpanelOverflowPolicy = 'drop_newest' | 'drop_oldest';

/**
 * Time as the sink sees it. Tests swap it for a fake so that backoff waits are recorded instead of
 * slept; everything else (request timeouts, the flush interval, `close()` deadlines) uses real timers.
 */
export interface MixpanelClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms`, or less if `signal` aborts first (then it must resolve, not reject). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** Backoff for 408, 429, retryable 5xx, network errors and timeouts. */
export interface MixpanelRetryOptions {
  /** First wait before jitter. Default 2000 ms (Mixpanel's advice). */
  minDelayMs?: number;
  /** Waits double up to this. Default 60 000 ms (Mixpanel's advice). */
  maxDelayMs?: number;
  /**
   * Fraction of each wait taken off at random, so that many processes hit by the same outage do not
   * retry in lockstep. Default 0.2: the first wait is 1.6–2 s.
   */
  jitter?: number;
  /** Retries after the first attempt before a batch is given up. Default 10. */
  maxRetries?: number;
  /**
   * Upper bound on the time from a batch's first attempt to its last; a retry that would start later
   * is not made. Default 10 minutes.
   */
  maxDurationMs?: number;
  /** A `Retry-After` longer than this is shortened to it. Default 300 000 ms. */
  maxRetryAfterMs?: number;
}

/** Options of {@link MixpanelSink}. Only `token` is required. */
export interface MixpanelSinkOptions {
  /** The project token. Added to every event (`token`) and update (`$token`). */
  token: string;
  /**
   * A service account (Owner or Admin role) for `/import`; needs `projectId`. The recommended
   * credentials: they can be rotated without touching the project.
   */
  serviceAccount?: { username: string; secret: string };
  /** The project's numeric ID, required with `serviceAccount`. */
  projectId?: string | number;
  /** The legacy project API secret, the alternative to `serviceAccount` for `/import`. */
  apiSecret?: string;
  /**
   * Ingestion host: `'us'` (default), `'eu'`, `'in'`, or a base URL such as a proxy or a local fake
   * (`http://127.0.0.1:4000`; a path prefix is kept). A wrong residency host loses data silently,
   * so EU and India projects must set it.
   */
  host?: MixpanelHost;
  /**
   * Endpoint for events. Default `'import'` when `serviceAccount` or `apiSecret` is given, else
   * `'track'`. `'import'` without them authenticates with the project token. `$merge` events always
   * go to `/import` and need `serviceAccount` or `apiSecret`.
   */
  endpoint?: MixpanelEventEndpoint;
  /** Gzip `/import` and `/track` bodies (`/engage` and `/groups` do not accept gzip). Default true. */
  compress?: boolean;
  /** Longest time a message waits for its batch to fill before it is sent anyway. Default 2000 ms. */
  flushIntervalMs?: number;
  /** Messages per request, at most 2000. Default 2000. */
  maxBatchMessages?: number;
  /** Uncompressed bytes per request, at most 2 MiB. Default 2 MiB. */
  maxBatchBytes?: number;
  /**
   * Messages held (queued or in flight) before the overflow policy applies. Default: no count limit
   * (100 000 000); the budget is `maxQueueBytes`.
   */
  maxQueueMessages?: number;
  /** Serialised bytes held (queued or in flight) before the overflow policy applies. Default 16 MiB. */
  maxQueueBytes?: number;
  /** Default `'drop_newest'`: what is already queued is older and closer to being sent. */
  overflow?: MixpanelOverflowPolicy;
  /** Requests in flight per endpoint. Default 2. */
  concurrency?: number;
  /** Whole-request timeout, body included. Default 10 000 ms. */
  requestTimeoutMs?: number;
  retry?: MixpanelRetryOptions;
  /**
   * After a 401 or 403 an endpoint sends nothing for this long and drops what it is given (counted
   * as `rejected`), then tries again with the next batch. Default 60 000 ms.
   */
  authPauseMs?: number;
  /** Timeout of `close()` when called without one, and of the signal handler. Default 10 000 ms. */
  closeTimeoutMs?: number;
  /**
   * Close the sink on SIGTERM and SIGINT (`true`) or on the listed signals. When idstitch's handler
   * is the only one for the signal, the signal is raised again once the sink is closed, so the
   * process ends as it would have without idstitch. Default false.
   */
  handleSignals?: boolean | readonly NodeJS.Signals[];
  /**
   * Receives every fault: invalid messages, rejected records, exhausted retries, credentials
   * refused, queue overflow starting and stopping, shutdown timeouts. Never given secrets.
   * Default: `console.warn` of the message.
   */
  onError?: (error: IdstitchError) => void;
  /**
   * A durable spool on local disk (Node only): every accepted message is journaled; past the memory
   * budget, or while Mixpanel is unreachable, messages wait on disk, and the next process on the same
   * directory delivers what this one left. One process per directory (a `LOCK` file; a second process
   * is refused, reported as `spool_locked`, and runs without a spool). `false` turns it off.
   *
   * Default: on in development (NODE_ENV unset or `development`, under Node) in `.idstitch/spool` in the
   * working directory; off in production unless `spool.dir` is given (the sink says so once); off under
   * NODE_ENV=test, so that parallel test workers do not fight over one directory's lock. See
   * docs/delivery.md.
   */
  spool?: SpoolOptions | false;
  /** Test seam for time; see {@link MixpanelClock}. */
  clock?: MixpanelClock;
  /** Test seam for jitter: returns a number in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** Everything the sink needs, checked once. Holds the `Authorization` value, so never log it. */
export interface ResolvedMixpanelOptions {
  token: string;
  baseUrl: URL;
  eventEndpoint: MixpanelEventEndpoint;
  /** `Authorization` header for `/import`. */
  importAuthorization: string;
  /** Whether `$merge` can be sent (it needs real import credentials, not the token). */
  canMerge: boolean;
  /** `project_id` query parameter, with service accounts only. */
  projectId: string | undefined;
  compress: boolean;
  flushIntervalMs: number;
  maxBatchMessages: number;
  maxBatchBytes: number;
  maxQueueMessages: number;
  maxQueueBytes: number;
  overflow: MixpanelOverflowPolicy;
  concurrency: number;
  requestTimeoutMs: number;
  retry: Required<MixpanelRetryOptions>;
  authPauseMs: number;
  closeTimeoutMs: number;
  signals: readonly NodeJS.Signals[];
  onError: (error: IdstitchError) => void;
  clock: MixpanelClock;
  random: () => number;
  spool: ResolvedSpoolOptions | undefined;
  /** In production without a spool: say once how to turn it on. */
  spoolHint: boolean;
}

const HOSTS: Readonly<Record<string, string>> = {
  us: 'https://api.mixpanel.com/',
  eu: 'https://api-eu.mixpanel.com/',
  in: 'https://api-in.mixpanel.com/',
};

/** Real time; the sleep timer is unref'd so a retry wait never holds the process open by itself. */
export const systemClock: MixpanelClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      (timer as { unref?(): void }).unref?.();
      signal.addEventListener('abort', done, { once: true });
    }),
};

function nonEmptyString(value: unknown, option: string, fix: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new IdstitchOptionsError(option, 'must be a non-empty string', fix);
  }
  return value;
}

function integer(value: unknown, option: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IdstitchOptionsError(
      option,
      `must be an integer from ${min} to ${max}, got ${String(value)}`,
      `Pass a value in that range or leave it out for the default (${fallback}).`,
    );
  }
  return value;
}

function resolveHost(host: unknown): URL {
  if (host === undefined) return new URL(HOSTS.us as string);
  if (typeof host === 'string') {
    const named = HOSTS[host];
    if (named) return new URL(named);
    let url: URL | undefined;
    try {
      url = new URL(host);
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password) {
      // A trailing slash makes `new URL('import', base)` keep a proxy's path prefix.
      if (!url.pathname.endsWith('/')) url.pathname += '/';
      url.search = '';
      url.hash = '';
      return url;
    }
  }
  throw new IdstitchOptionsError(
    'host',
    `must be 'us', 'eu', 'in' or an http(s) URL without credentials, got ${JSON.stringify(host)}`,
    "Use host: 'eu' for an EU-residency project, or a full URL such as 'https://proxy.example.com/mixpanel'.",
  );
}

function basic(user: string, password: string): string {
  // The colon is required even when the password is empty; leaving it out is a classic 401.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(''))}`;
}

/** Checks options once, filling in defaults. Throws {@link IdstitchOptionsError} naming the fix. */
export function resolveMixpanelOptions(options: MixpanelSinkOptions): ResolvedMixpanelOptions {
  if (options === null || typeof options !== 'object') {
    throw new IdstitchOptionsError(
      'options',
      'must be an object',
      "Pass new MixpanelSink({ token: '<project token>' }).",
    );
  }
  const token = nonEmptyString(
    options.token,
    'token',
    'Copy the project token from Project Settings in Mixpanel.',
  );

  let importAuthorization = basic(token, '');
  let canMerge = false;
  let projectId: string | undefined;
  if (options.serviceAccount !== undefined && options.apiSecret !== undefined) {
    throw new IdstitchOptionsError(
      'apiSecret',
      'cannot be combined with serviceAccount',
      'Pass one set of /import credentials; a service account is preferred.',
    );
  }
  if (options.serviceAccount !== undefined) {
    const account = options.serviceAccount;
    if (account === null || typeof account !== 'object') {
      throw new IdstitchOptionsError(
        'serviceAccount',
        'must be { username, secret }',
        'Create a service account under Organization Settings → Service Accounts.',
      );
    }
    const username = nonEmptyString(
      account.username,
      'serviceAccount.username',
      'Use the username shown when the service account was created.',
    );
    const secret = nonEmptyString(
      account.secret,
      'serviceAccount.secret',
      'Use the secret shown once when the service account was created.',
    );
    const id = options.projectId;
    if ((typeof id !== 'string' && typeof id !== 'number') || !/^\d+$/.test(String(id))) {
      throw new IdstitchOptionsError(
        'projectId',
        'is required with serviceAccount and must be the numeric project ID',
        'Copy the Project ID from Project Settings in Mixpanel.',
      );
    }
    projectId = String(id);
    importAuthorization = basic(username, secret);
    canMerge = true;
  } else if (options.apiSecret !== undefined) {
    importAuthorization = basic(
      nonEmptyString(
        options.apiSecret,
        'apiSecret',
        'Copy the API secret from Project Settings in Mixpanel.',
      ),
      '',
    );
    canMerge = true;
  }

  const endpoint = options.endpoint ?? (canMerge ? 'import' : 'track');
  if (endpoint !== 'import' && endpoint !== 'track') {
    throw new IdstitchOptionsError(
      'endpoint',
      `must be 'import' or 'track', got ${JSON.stringify(options.endpoint)}`,
      "Use 'import' (with serviceAccount or apiSecret) for server-side events.",
    );
  }

  const overflow = options.overflow ?? 'drop_newest';
  if (overflow !== 'drop_newest' && overflow !== 'drop_oldest') {
    throw new IdstitchOptionsError(
      'overflow',
      `must be 'drop_newest' or 'drop_oldest', got ${JSON.stringify(options.overflow)}`,
      "Leave it out for 'drop_newest'.",
    );
  }

  let signals: readonly NodeJS.Signals[] = [];
  if (options.handleSignals === true) signals = ['SIGTERM', 'SIGINT'];
  else if (Array.isArray(options.handleSignals)) signals = [...options.handleSignals];
  else if (options.handleSignals !== undefined && options.handleSignals !== false) {
    throw new IdstitchOptionsError(
      'handleSignals',
      'must be a boolean or a list of signal names',
      "Use handleSignals: true for SIGTERM and SIGINT, or e.g. ['SIGTERM'].",
    );
  }

  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new IdstitchOptionsError('onError', 'must be a function', 'Pass (error) => logger.warn(error).');
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new IdstitchOptionsError('random', 'must be a function returning [0, 1)', 'Leave it out.');
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function' || typeof clock.sleep !== 'function') {
    throw new IdstitchOptionsError('clock', 'must have now() and sleep(ms, signal)', 'Leave it out.');
  }

  const retry = options.retry ?? {};
  const minDelayMs = integer(retry.minDelayMs, 'retry.minDelayMs', 2000, 0, 3_600_000);
  const jitter = retry.jitter ?? 0.2;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new IdstitchOptionsError('retry.jitter', 'must be a number from 0 to 1', 'Leave it out for 0.2.');
  }

  const { spool, hint } = resolveSpool(options.spool);
  const spoolOptions = { spool, spoolHint: hint };

  return {
    token,
    baseUrl: resolveHost(options.host),
    eventEndpoint: endpoint,
    importAuthorization,
    canMerge,
    projectId,
    compress: options.compress ?? true,
    flushIntervalMs: integer(options.flushIntervalMs, 'flushIntervalMs', 2000, 1, 3_600_000),
    maxBatchMessages: integer(
      options.maxBatchMessages,
      'maxBatchMessages',
      MIXPANEL_LIMITS.maxBatchMessages,
      1,
      MIXPANEL_LIMITS.maxBatchMessages,
    ),
    maxBatchBytes: integer(
      options.maxBatchBytes,
      'maxBatchBytes',
      MIXPANEL_LIMITS.maxBatchBytes,
      1024,
      MIXPANEL_LIMITS.maxBatchBytes,
    ),
    // The memory budget is in bytes: a count says nothing about memory (10 000 small events were 3.2 MB
    // of a 16 MiB budget, and the rest of a burst was dropped). A count limit is there for who wants one.
    maxQueueMessages: integer(options.maxQueueMessages, 'maxQueueMessages', 100_000_000, 1, 100_000_000),
    maxQueueBytes: integer(options.maxQueueBytes, 'maxQueueBytes', 16 * 1024 * 1024, 1024, 2 ** 40),
    overflow,
    concurrency: integer(options.concurrency, 'concurrency', 2, 1, 64),
    requestTimeoutMs: integer(options.requestTimeoutMs, 'requestTimeoutMs', 10_000, 1, 600_000),
    retry: {
      minDelayMs,
      maxDelayMs: integer(retry.maxDelayMs, 'retry.maxDelayMs', 60_000, minDelayMs, 3_600_000),
      jitter,
      maxRetries: integer(retry.maxRetries, 'retry.maxRetries', 10, 0, 1000),
      maxDurationMs: integer(retry.maxDurationMs, 'retry.maxDurationMs', 600_000, 0, 7 * 24 * 3_600_000),
      maxRetryAfterMs: integer(retry.maxRetryAfterMs, 'retry.maxRetryAfterMs', 300_000, 0, 24 * 3_600_000),
    },
    authPauseMs: integer(options.authPauseMs, 'authPauseMs', 60_000, 0, 24 * 3_600_000),
    closeTimeoutMs: integer(options.closeTimeoutMs, 'closeTimeoutMs', 10_000, 0, 3_600_000),
    signals,
    onError: options.onError ?? ((error) => console.warn(error.message)),
    clock,
    random: options.random ?? Math.random,
    ...spoolOptions,
  };
}

/** Where the spool lives when it is on by default (development): under the working directory. */
export const DEFAULT_SPOOL_DIR = '.idstitch/spool';

/** The environment the spool default depends on; `undefined` where there is no Node `process` (workerd, browsers). */
function nodeEnv(): { env: string | undefined } | undefined {
  const runtime = globalThis as {
    process?: { versions?: { node?: string }; env?: Record<string, string | undefined> };
  };
  const proc = runtime.process;
  // Bun and Deno set `process.versions.node` too; their test runners and permissions differ, so no default there.
  if (typeof proc?.versions?.node !== 'string' || 'Bun' in globalThis || 'Deno' in globalThis)
    return undefined;
  return { env: proc.env?.NODE_ENV };
}

/**
 * The `spool` option, defaulted here and nowhere else. Left out: on in development (NODE_ENV unset or
 * `development`) under `.idstitch/spool` in the working directory; off in production (a directory must
 * be chosen: `hint` is true so the sink says so once) and under NODE_ENV=test, where parallel test workers
 * would otherwise share one directory and all but one would be refused its lock.
 */
function resolveSpool(spool: SpoolOptions | false | undefined): {
  spool: ResolvedSpoolOptions | undefined;
  hint: boolean;
} {
  if (spool === false) return { spool: undefined, hint: false };
  if (spool === undefined) {
    const node = nodeEnv();
    if (node === undefined) return { spool: undefined, hint: false };
    if (node.env === undefined || node.env === '' || node.env === 'development') {
      return { spool: resolveSpoolFields({}), hint: false };
    }
    return { spool: undefined, hint: node.env === 'production' };
  }
  if (spool === null || typeof spool !== 'object' || Array.isArray(spool)) {
    throw new IdstitchOptionsError(
      'spool',
      `must be an object or false, got ${spool === null ? 'null' : typeof spool}`,
      "Use spool: { dir: '/var/lib/myapp/idstitch-spool' }, or spool: false to turn it off.",
    );
  }
  return { spool: resolveSpoolFields(spool), hint: false };
}

function resolveSpoolFields(spool: SpoolOptions): ResolvedSpoolOptions {
  const dir = spool.dir ?? DEFAULT_SPOOL_DIR;
  if (typeof dir !== 'string' || dir.trim() === '' || dir.includes('\0')) {
    throw new IdstitchOptionsError(
      'spool.dir',
      `must be a non-empty path, got ${JSON.stringify(dir)}`,
      "Use spool: { dir: '/var/lib/myapp/idstitch-spool' } (one directory per process).",
    );
  }
  const fsync = spool.fsync ?? 'per-batch';
  if (fsync !== 'per-batch' && fsync !== 'interval' && fsync !== 'never') {
    throw new IdstitchOptionsError(
      'spool.fsync',
      `must be 'per-batch', 'interval' or 'never', got ${JSON.stringify(fsync)}`,
      "Leave it out for 'per-batch'.",
    );
  }
  const segmentBytes = integer(spool.segmentBytes, 'spool.segmentBytes', 8 * 1024 * 1024, 4096, 1024 ** 3);
  const maxBytes = integer(spool.maxBytes, 'spool.maxBytes', 1024 ** 3, 64 * 1024, 2 ** 50);
  if (maxBytes < segmentBytes) {
    throw new IdstitchOptionsError(
      'spool.maxBytes',
      `(${maxBytes}) must be at least spool.segmentBytes (${segmentBytes})`,
      'Raise spool.maxBytes or lower spool.segmentBytes.',
    );
  }
  return {
    dir,
    fsync,
    fsyncIntervalMs: integer(spool.fsyncIntervalMs, 'spool.fsyncIntervalMs', 1000, 1, 3_600_000),
    maxBytes,
    segmentBytes,
  };
}
