import { IdstitchError, type MixpanelMessageOutcome } from '@idstitch/core';

/**
 * Outcomes after which an entry stays pending in the stream (not acknowledged), so that this or another
 * worker claims it again once it has been idle for `claimIdleMs`. Every other outcome but `delivered` is
 * a refusal for good: sending it again would be refused again.
 */
export const KEPT_FOR_RETRY: ReadonlySet<MixpanelMessageOutcome> = new Set([
  'retries_exhausted',
  'shutdown_timeout',
  'queue_overflow',
  'after_close',
  'unauthorized',
]);

/**
 * The sink reports some messages as lost that the outbox still has: they stay pending in the stream.
 * Says so, so that an operator reading the log does not count them as lost.
 */
export function keptInStream(error: IdstitchError): IdstitchError {
  if (!['retries_exhausted', 'shutdown_timeout', 'unauthorized', 'queue_overflow'].includes(error.code)) {
    return error;
  }
  return new IdstitchError(
    error.code,
    `${error.message.replace(/^idstitch: /, '')} (outbox: these stay in the Redis stream and are sent again ` +
      'once a worker claims them)',
    { cause: error.cause, details: { ...error.details, keptInStream: true } },
  );
}
