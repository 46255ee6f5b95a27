/** Mixpanel's documented ingestion limits, in one place (see reference/mixpanel.md §2). */
export const MIXPANEL_LIMITS = Object.freeze({
  /** Properties per event. */
  maxProperties: 255,
  /** Characters in a property name; Mixpanel truncates longer string values at the same length. */
  maxKeyLength: 255,
  maxStringLength: 255,
  /** Elements in a list property and keys in an object property. */
  maxContainerEntries: 255,
  /** Nesting depth of object and list properties. */
  maxDepth: 3,
  /** Serialised size of one list or object property on an event. */
  maxContainerBytes: 8 * 1024,
  /** Serialised size of one event or update. */
  maxMessageBytes: 1024 * 1024 - 1,
  /** Characters in `$insert_id`. */
  maxInsertIdLength: 36,
  /** Events or updates per request. */
  maxBatchMessages: 2000,
  /** Uncompressed request body (the conservative bound of the two documented). */
  maxBatchBytes: 2 * 1024 * 1024,
  /** Earliest accepted event time: 1971-01-01T00:00:00Z, in milliseconds. */
  minTimeMs: 31_536_000_000,
  /** How far in the future an event may be. */
  maxFutureMs: 60 * 60 * 1000,
});

/** `distinct_id` and `$insert_id` values Mixpanel refuses as placeholders (compared case-insensitively). */
export const INVALID_ID_VALUES: ReadonlySet<string> = new Set([
  '00000000-0000-0000-0000-000000000000',
  'anon',
  'anonymous',
  'nil',
  'none',
  'null',
  'n/a',
  'na',
  'undefined',
  'unknown',
  '<nil>',
  '0',
  '-1',
  'true',
  'false',
  '[]',
  '{}',
]);

/** Every `/engage` operation, in Mixpanel's documentation order. */
export const PROFILE_OPERATIONS = [
  '$set',
  '$set_once',
  '$add',
  '$append',
  '$union',
  '$remove',
  '$unset',
  '$delete',
] as const;

/** Event names reserved for identity operations, which the tracker emits through dedicated methods. */
export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set(['$identify', '$create_alias', '$merge']);
