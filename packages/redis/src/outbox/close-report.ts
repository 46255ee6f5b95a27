import { IdstitchError } from '@idstitch/core';

/**
 * What `RedisOutbox.close()` reports about the messages it could not append by its deadline: those of an
 * append sent and not answered (`in_doubt`: Redis may still append them, and then delivers them) and
 * those never sent (`shutdown_timeout`). One error for each kind, none for a kind with no message.
 */
export function closeLeftovers(inDoubt: number, notSent: number, timeoutMs: number): IdstitchError[] {
  const errors: IdstitchError[] = [];
  if (inDoubt > 0) {
    errors.push(
      new IdstitchError(
        'in_doubt',
        `close() ran out of time after ${timeoutMs} ms while an append of ${inDoubt} messages was sent to ` +
          'Redis and not answered: Redis may have appended them (and delivers them then) or not; they are ' +
          'counted in stats().dropped.in_doubt',
        { details: { inDoubt, timeoutMs } },
      ),
    );
  }
  if (notSent > 0) {
    errors.push(
      new IdstitchError(
        'shutdown_timeout',
        `close() ran out of time after ${timeoutMs} ms with Redis unreachable or stalled; ${notSent} ` +
          'messages were not appended to the outbox',
        { details: { undelivered: notSent, timeoutMs } },
      ),
    );
  }
  return errors;
}
