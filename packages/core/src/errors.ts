/** Machine-readable reason attached to every {@link IdstitchError}. */
export type IdstitchErrorCode =
  | 'invalid_event_name'
  | 'invalid_property'
  | 'invalid_id'
  | 'invalid_message'
  | 'invalid_cookie'
  | 'tampered_cookie'
  | 'duplicate_cookie'
  | 'unsupported_in_mode'
  | 'resolver_failed'
  | 'hook_failed'
  | 'cookie_write_failed'
  | 'held_updates_dropped'
  | 'store_failed'
  | 'consent'
  | 'after_close'
  | 'delivery_failed'
  | 'rejected_by_mixpanel'
  | 'unauthorized'
  | 'queue_overflow'
  | 'retries_exhausted'
  | 'shutdown_timeout'
  | 'message_too_large'
  | 'spool_unavailable'
  | 'spool_locked'
  | 'spool_failed'
  | 'spool_full'
  | 'spool_corrupt'
  | 'spool_torn_tail'
  | 'in_doubt';

/**
 * A fault idstitch reports instead of throwing into the host app's request: bad input that was dropped or
 * repaired, a tampered cookie, a failed delivery. Delivered to the `onError` hook.
 */
export class IdstitchError extends Error {
  override readonly name = 'IdstitchError';
  readonly code: IdstitchErrorCode;
  /** Structured facts about the fault (never secrets, never raw cookie values). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: IdstitchErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(`idstitch: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...options.details });
  }
}

/** A programmer error in idstitch's options, thrown at start-up. The message names the option and the fix. */
export class IdstitchOptionsError extends TypeError {
  override readonly name = 'IdstitchOptionsError';
  /** Dotted path of the offending option, e.g. `cookie.maxAge`. */
  readonly option: string;

  constructor(option: string, problem: string, fix: string) {
    super(`idstitch: option \`${option}\` ${problem}. ${fix}`);
    this.option = option;
  }
}
