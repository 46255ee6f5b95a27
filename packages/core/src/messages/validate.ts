import { INVALID_ID_VALUES, MIXPANEL_LIMITS, PROFILE_OPERATIONS } from './limits.js';
import type { GroupUpdate, MixpanelEvent, OutgoingMessage, ProfileUpdate } from './types.js';

/** Why a message breaks Mixpanel's ingestion rules, named like Mixpanel's own `failed_records`. */
export interface ValidationProblem {
  /** The offending field, e.g. `properties.$insert_id`. */
  field: string;
  message: string;
}

const INSERT_ID_PATTERN = /^[A-Za-z0-9-]+$/;
const GROUP_OPERATIONS = ['$set', '$set_once', '$union', '$remove', '$unset', '$delete'] as const;

/** True when Mixpanel would refuse `id` as a placeholder (`null`, `undefined`, `0`, the nil UUID, ...). */
export function isPlaceholderId(id: string): boolean {
  return INVALID_ID_VALUES.has(id.trim().toLowerCase());
}

/** Converts an event `time` in seconds or milliseconds to milliseconds, as Mixpanel reads it. */
function timeInMs(time: number): number {
  return time < 1e11 ? time * 1000 : time;
}

/** Checks one event against Mixpanel's documented `/import` rules; `undefined` when it is valid. */
export function validateEvent(event: MixpanelEvent, now: number = Date.now()): ValidationProblem | undefined {
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
  const { time, distinct_id: distinctId, $insert_id: insertId } = properties;
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
  if (typeof distinctId !== 'string') {
    return { field: 'properties.distinct_id', message: 'distinct_id must be a string' };
  }
  if (isPlaceholderId(distinctId)) {
    return { field: 'properties.distinct_id', message: `"${distinctId}" is a placeholder Mixpanel refuses` };
  }
  if (
    typeof insertId !== 'string' ||
    insertId.length === 0 ||
    insertId.length > MIXPANEL_LIMITS.maxInsertIdLength ||
    !INSERT_ID_PATTERN.test(insertId) ||
    isPlaceholderId(insertId)
  ) {
    return {
      field: 'properties.$insert_id',
      message: `$insert_id must be 1-${MIXPANEL_LIMITS.maxInsertIdLength} letters, digits or "-"`,
    };
  }
  if (Object.keys(properties).length > MIXPANEL_LIMITS.maxProperties) {
    return { field: 'properties', message: `more than ${MIXPANEL_LIMITS.maxProperties} properties` };
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

/**
 * Payloads the tracker built and validated a moment ago. Sinks skip validating them again on the hot path;
 * anything else (other producers, replays) is still checked. Kept in a global slot so the CommonJS and ESM
 * copies of this package share it.
 */
const VALIDATED: WeakSet<object> = (() => {
  const slot = Symbol.for('idstitch.validatedPayloads');
  const holder = globalThis as unknown as Record<symbol, WeakSet<object> | undefined>;
  holder[slot] ??= new WeakSet();
  return holder[slot];
})();

/** Records that `payload` passed validation where it was built. */
export function markValidated(payload: OutgoingMessage['payload']): void {
  VALIDATED.add(payload);
}

/** Like {@link validateMessage}, but trusts payloads the tracker has already validated. */
export function validateUnlessValidated(
  message: OutgoingMessage,
  now: number = Date.now(),
): ValidationProblem | undefined {
  if (message !== null && typeof message === 'object' && VALIDATED.has(message.payload)) return undefined;
  return validateMessage(message, now);
}
