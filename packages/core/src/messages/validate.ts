import { INVALID_ID_VALUES, MIXPANEL_LIMITS, PROFILE_OPERATIONS } from './limits.js';
import type { GroupUpdate, MixpanelEvent, OutgoingMessage, ProfileUpdate } from './types.js';

/** Why a message breaks Mixpanel's ingestion rules, named like Mixpanel's own `failed_records`. */
export interface ValidationProblem {
  /** The offending field, e.g. `properties.$insert_id`. */
  field: string;
  message: string;
}

const GROUP_OPERATIONS = ['$set', '$set_once', '$union', '$remove', '$unset', '$delete'] as const;
/** The longest placeholder: a longer ID with no whitespace to trim cannot be one. */
const LONGEST_PLACEHOLDER = Math.max(...[...INVALID_ID_VALUES].map((value) => value.length));
/** `PLACEHOLDER_LENGTH[n]`: some placeholder is `n` characters long. */
const PLACEHOLDER_LENGTH: readonly boolean[] = Array.from({ length: LONGEST_PLACEHOLDER + 1 }, (_, length) =>
  [...INVALID_ID_VALUES].some((value) => value.length === length),
);

/** A printable ASCII character other than space: never removed by `trim()`. */
function isVisibleAscii(code: number): boolean {
  return code > 0x20 && code < 0x7f;
}

/** True when Mixpanel would refuse `id` as a placeholder (`null`, `undefined`, `0`, the nil UUID, ...). */
export function isPlaceholderId(id: string): boolean {
  // Exact shortcut when trimming changes nothing (visible ends): then only an ID as long as some placeholder can be
  // one (`$device:…` and most user IDs are longer; `user-1` is no placeholder's length). Trimming, lower-casing and
  // a Set lookup cost about 1k instructions an event.
  if (
    isVisibleAscii(id.charCodeAt(0)) &&
    isVisibleAscii(id.charCodeAt(id.length - 1)) &&
    PLACEHOLDER_LENGTH[id.length] !== true
  ) {
    return false;
  }
  return INVALID_ID_VALUES.has(id.trim().toLowerCase());
}

/** True for 1-36 letters, digits or `-` that are not a placeholder: what Mixpanel accepts as `$insert_id`. */
export function isValidInsertId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MIXPANEL_LIMITS.maxInsertIdLength)
    return false;
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    // A-Z, a-z, 0-9, '-' (what /^[A-Za-z0-9-]+$/ accepted), without a regular expression per event.
    const letter = (code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a;
    if (!letter && !(code >= 0x30 && code <= 0x39) && code !== 0x2d) return false;
  }
  return !isPlaceholderId(id);
}

/** Converts an event `time` in seconds or milliseconds to milliseconds, as Mixpanel reads it. */
function timeInMs(time: number): number {
  return time < 1e11 ? time * 1000 : time;
}

const insertIdProblem = (): ValidationProblem => ({
  field: 'properties.$insert_id',
  message: `$insert_id must be 1-${MIXPANEL_LIMITS.maxInsertIdLength} letters, digits or "-"`,
});

const tooManyProperties = (): ValidationProblem => ({
  field: 'properties',
  message: `more than ${MIXPANEL_LIMITS.maxProperties} properties`,
});

/** Checks one event against Mixpanel's documented `/import` rules; `undefined` when it is valid. */
export function validateEvent(event: MixpanelEvent, now: number = Date.now()): ValidationProblem | undefined {
  const problem = validateEventExceptInsertId(event, now);
  if (problem) return problem;
  if (!isValidInsertId(event.properties.$insert_id)) return insertIdProblem();
  if (Object.keys(event.properties).length > MIXPANEL_LIMITS.maxProperties) return tooManyProperties();
  return undefined;
}

/**
 * {@link validateEvent} for an event the tracker has just stamped: its `$insert_id` is a fresh UUID or the
 * caller's own, already checked with {@link isValidInsertId}, so it is not checked again. Everything a caller
 * could have influenced (name, time, distinct_id, the number of properties) is checked in full.
 */
export function validateStampedEvent(
  event: MixpanelEvent,
  now: number = Date.now(),
): ValidationProblem | undefined {
  const problem = validateEventExceptInsertId(event, now);
  if (problem) return problem;
  if (Object.keys(event.properties).length > MIXPANEL_LIMITS.maxProperties) return tooManyProperties();
  return undefined;
}

function validateEventExceptInsertId(event: MixpanelEvent, now: number): ValidationProblem | undefined {
  if (typeof event?.event !== 'string' || event.event.length === 0) {
    return { field: 'event', message: 'event name must be a non-empty string' };
  }
  if (event.event.length > MIXPANEL_LIMITS.maxKeyLength) {
    return { field: 'event', message: `event name longer than ${MIXPANEL_LIMITS.maxKeyLength} characters` };
  }
  const properties = event.properties;
  if (properties === null || typeof properties !== 'object') {
    return { field: 'properties', message: 'properties must be an object' };
  }
  const time = properties.time;
  if (typeof time !== 'number' || !Number.isFinite(time)) {
    return {
      field: 'properties.time',
      message: 'time must be a finite number of milliseconds since the epoch',
    };
  }
  const ms = timeInMs(time);
  if (ms < MIXPANEL_LIMITS.minTimeMs) {
    return { field: 'properties.time', message: 'time is before 1971-01-01' };
  }
  if (ms > now + MIXPANEL_LIMITS.maxFutureMs) {
    return { field: 'properties.time', message: 'time is more than 1 hour in the future' };
  }
  const distinctId = properties.distinct_id;
  if (typeof distinctId !== 'string') {
    return { field: 'properties.distinct_id', message: 'distinct_id must be a string' };
  }
  if (isPlaceholderId(distinctId)) {
    return { field: 'properties.distinct_id', message: `"${distinctId}" is a placeholder Mixpanel refuses` };
  }
  return undefined;
}

function validateOperations(
  update: ProfileUpdate | GroupUpdate,
  allowed: readonly string[],
): ValidationProblem | undefined {
  const present = allowed.filter((op) => (update as unknown as Record<string, unknown>)[op] !== undefined);
  if (present.length !== 1) {
    return {
      field: 'operation',
      message: `exactly one of ${allowed.join(', ')} is required, got ${present.length}`,
    };
  }
  const op = present[0] as string;
  const value = (update as unknown as Record<string, unknown>)[op];
  if (op === '$unset') {
    if (!Array.isArray(value) || value.some((name) => typeof name !== 'string')) {
      return { field: op, message: '$unset takes a list of property names' };
    }
  } else if (op === '$delete') {
    return undefined;
  } else if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { field: op, message: `${op} takes an object of properties` };
  } else if (
    op === '$add' &&
    Object.values(value).some((n) => typeof n !== 'number' || !Number.isFinite(n))
  ) {
    return { field: op, message: '$add values must be finite numbers' };
  } else if (op === '$union' && Object.values(value).some((list) => !Array.isArray(list))) {
    return { field: op, message: '$union values must be lists' };
  }
  return undefined;
}

/** Checks one `/engage` update; `undefined` when it is valid. */
export function validateProfileUpdate(update: ProfileUpdate): ValidationProblem | undefined {
  const id = update?.$distinct_id;
  if (typeof id !== 'string' || id.length === 0 || isPlaceholderId(id)) {
    return { field: '$distinct_id', message: '$distinct_id must be a real ID, not empty or a placeholder' };
  }
  return validateOperations(update, PROFILE_OPERATIONS);
}

/** Checks one `/groups` update; `undefined` when it is valid. */
export function validateGroupUpdate(update: GroupUpdate): ValidationProblem | undefined {
  if (typeof update?.$group_key !== 'string' || update.$group_key.length === 0) {
    return { field: '$group_key', message: '$group_key must be a non-empty string' };
  }
  if (
    typeof update.$group_id !== 'string' ||
    update.$group_id.length === 0 ||
    isPlaceholderId(update.$group_id)
  ) {
    return { field: '$group_id', message: '$group_id must be a real ID, not empty or a placeholder' };
  }
  return validateOperations(update, GROUP_OPERATIONS);
}

/** Checks any outgoing message; `undefined` when Mixpanel would accept it. */
export function validateMessage(
  message: OutgoingMessage,
  now: number = Date.now(),
): ValidationProblem | undefined {
  switch (message?.kind) {
    case 'event':
      return validateEvent(message.payload, now);
    case 'profile':
      return validateProfileUpdate(message.payload);
    case 'group':
      return validateGroupUpdate(message.payload);
    default:
      return { field: 'kind', message: 'message kind must be event, profile or group' };
  }
}

/** Returns what it is given: lets a subclass stamp its private field onto an existing object. */
class Stamp {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the point: `new` then installs private fields on `target`.
    return target;
  }
}

interface Brand {
  mark(payload: object): void;
  has(payload: object): boolean;
}

/**
 * The validated brand: a private field stamped onto the payload object itself. Checking it is a property lookup
 * (where a `WeakSet` costs a hash probe and keeps a table alive), and it cannot be forged: no plain object, copy,
 * spread, `structuredClone` or JSON round trip carries a private field, so only the exact object the tracker
 * validated passes.
 */
function makeBrand(): Brand {
  class Validated extends Stamp {
    #validated = true;
    static has(payload: object): boolean {
      return #validated in payload;
    }
  }
  return {
    mark(payload) {
      // A second stamp of the same object would throw.
      if (!Validated.has(payload)) new Validated(payload);
    },
    has: (payload) => Validated.has(payload),
  };
}

/**
 * Payloads the tracker built and validated a moment ago. Sinks skip validating them again on the hot path;
 * anything else (other producers, replays) is still checked. Kept in a global slot so the CommonJS and ESM
 * copies of this package share one brand.
 */
const BRAND: Brand = (() => {
  const slot = Symbol.for('idstitch.validatedBrand');
  const holder = globalThis as unknown as Record<symbol, Brand | undefined>;
  holder[slot] ??= makeBrand();
  return holder[slot];
})();

/** Records that `payload` passed validation where it was built. */
export function markValidated(payload: OutgoingMessage['payload']): void {
  BRAND.mark(payload);
}

/** Like {@link validateMessage}, but trusts payloads the tracker has already validated. */
export function validateUnlessValidated(
  message: OutgoingMessage,
  now: number = Date.now(),
): ValidationProblem | undefined {
  if (message !== null && typeof message === 'object') {
    const payload: unknown = message.payload;
    if (payload !== null && typeof payload === 'object' && BRAND.has(payload)) return undefined;
  }
  return validateMessage(message, now);
}
