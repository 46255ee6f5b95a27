/**
 * `idstitch-outbox-worker`: runs one {@link OutboxWorker} as its own process, configured from the
 * environment, until SIGTERM or SIGINT; then it closes (delivering what it holds within
 * `closeTimeoutMs`) and exits 0. Start more processes to deliver faster.
 */
import { IdstitchOptionsError, type MixpanelSinkOptions } from '@idstitch/core';
import type { OutboxWorkerOptions } from '../worker/options.js';
import { OutboxWorker } from '../worker/worker.js';

export const USAGE = `Usage: idstitch-outbox-worker

Delivers the idstitch outbox (a Redis Stream) to Mixpanel until SIGTERM or SIGINT.
Configured from the environment:

  REDIS_URL                          Redis to read from (default redis://127.0.0.1:6379)
  IDSTITCH_REDIS_PREFIX              key prefix, as given to RedisOutbox (default idstitch:)
  MIXPANEL_TOKEN                     project token (required)
  MIXPANEL_SERVICE_ACCOUNT_USERNAME  service account for /import, with MIXPANEL_SERVICE_ACCOUNT_SECRET
  MIXPANEL_SERVICE_ACCOUNT_SECRET    and MIXPANEL_PROJECT_ID
  MIXPANEL_PROJECT_ID
  MIXPANEL_API_SECRET                legacy API secret for /import, instead of a service account
  MIXPANEL_HOST                      us (default), eu, in, or a base URL
  IDSTITCH_OUTBOX_OPTIONS            JSON of further OutboxWorker options, e.g.
                                     {"claimIdleMs":30000,"consumer":"worker-1","mixpanel":{"flushIntervalMs":1000}}
`;

interface CliIo {
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  error: (line: string) => void;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT). */
  stopSignal: Promise<NodeJS.Signals>;
}

/** Builds the worker's options from the environment; throws {@link IdstitchOptionsError} naming the variable. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): Omit<OutboxWorkerOptions, 'onError'> {
  let extra: Partial<OutboxWorkerOptions> = {};
  if (env.IDSTITCH_OUTBOX_OPTIONS) {
    try {
      extra = JSON.parse(env.IDSTITCH_OUTBOX_OPTIONS) as Partial<OutboxWorkerOptions>;
    } catch (error) {
      throw new IdstitchOptionsError(
        'IDSTITCH_OUTBOX_OPTIONS',
        `is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
        'Pass a JSON object, e.g. {"claimIdleMs":30000}.',
      );
    }
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) {
      throw new IdstitchOptionsError(
        'IDSTITCH_OUTBOX_OPTIONS',
        'must be a JSON object',
        'e.g. {"claimIdleMs":30000}.',
      );
    }
  }
  const token = env.MIXPANEL_TOKEN ?? extra.mixpanel?.token;
  if (!token) {
    throw new IdstitchOptionsError(
      'MIXPANEL_TOKEN',
      'is not set',
      'Set it to the project token (Project Settings in Mixpanel).',
    );
  }
  const mixpanel: MixpanelSinkOptions = { ...extra.mixpanel, token };
  if (env.MIXPANEL_SERVICE_ACCOUNT_USERNAME || env.MIXPANEL_SERVICE_ACCOUNT_SECRET) {
    mixpanel.serviceAccount = {
      username: env.MIXPANEL_SERVICE_ACCOUNT_USERNAME ?? '',
      secret: env.MIXPANEL_SERVICE_ACCOUNT_SECRET ?? '',
    };
  }
  if (env.MIXPANEL_PROJECT_ID) mixpanel.projectId = env.MIXPANEL_PROJECT_ID;
  if (env.MIXPANEL_API_SECRET) mixpanel.apiSecret = env.MIXPANEL_API_SECRET;
  if (env.MIXPANEL_HOST) mixpanel.host = env.MIXPANEL_HOST;
  return {
    ...extra,
    redis: env.REDIS_URL ?? (extra.redis as string | undefined) ?? 'redis://127.0.0.1:6379',
    ...(env.IDSTITCH_REDIS_PREFIX ? { prefix: env.IDSTITCH_REDIS_PREFIX } : {}),
    mixpanel,
  };
}

/** Runs the worker until asked to stop; resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.log(USAGE);
    return 0;
  }
  if (argv.length > 0) {
    io.error(
      `idstitch-outbox-worker: unexpected argument ${argv[0]}; it is configured from the environment\n`,
    );
    io.error(USAGE);
    return 2;
  }
  let worker: OutboxWorker;
  try {
    worker = new OutboxWorker({
      ...optionsFromEnv(io.env),
      onError: (error) => io.error(`${error.message} [${error.code}]`),
    });
  } catch (error) {
    io.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  worker.start();
  io.log(`idstitch-outbox-worker: delivering ${worker.stream} as consumer ${worker.consumer}`);
  const signal = await io.stopSignal;
  io.log(`idstitch-outbox-worker: ${signal}, closing`);
  await worker.close();
  const stats = worker.stats();
  io.log(
    `idstitch-outbox-worker: closed; delivered ${stats.delivered}, refused for good ${stats.rejected}; ` +
      'anything undelivered stays in the stream for the next worker',
  );
  return 0;
}

/** The process side: real environment, console, and signals. */
export function runFromProcess(): Promise<number> {
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return main(process.argv.slice(2), {
    env: process.env,
    log: (line) => console.log(line),
    error: (line) => console.error(line),
    stopSignal,
  });
}
