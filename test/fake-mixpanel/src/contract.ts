/**
 * Mixpanel's documented ingestion rules, written independently of `@idstitch/core`'s validator so the
 * fake is an oracle for the client rather than a mirror of it (see shared/reference/mixpanel.md §2–4).
 */

/** Placeholder IDs Mixpanel refuses, compared case-insensitively. */
const PLACEHOLDER_IDS = new Set([
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

const JAN_1971_MS = Date.UTC(1971, 0, 1);
const HOUR_MS = 3_600_000;
/** `/track` silently drops events older than this while still answering success. */
export const TRACK_MAX_AGE_MS = 5 * 24 * HOUR_MS;

export interface Problem {
  field: string;
  message: string;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isPlaceholder(id: string): boolean {
  return PLACEHOLDER_IDS.has(id.trim().toLowerCase());
}

/** Seconds or milliseconds, as Mixpanel reads `time`. */
export function timeMs(time: number): number {
  return time < 1e11 ? time * 1000 : time;
}

function checkTime(time: unknown, now: number, required: boolean): Problem | undefined {
  if (time === undefined && !required) return undefined;
  if (typeof time !== 'number' || !Number.isFinite(time)) {
    return { field: 'properties.time', message: "'properties.time' is invalid: must be a number" };
  }
  const ms = timeMs(time);
  if (ms < JAN_1971_MS)
    return { field: 'properties.time', message: "'properties.time' is before 1971-01-01" };
  if (ms > now + HOUR_MS) {
    return { field: 'properties.time', message: "'properties.time' is more than 1 hour in the future" };
  }
  return undefined;
}

function checkInsertId(id: unknown, required: boolean): Problem | undefined {
  if (id === undefined && !required) return undefined;
  if (
    typeof id !== 'string' ||
    id.length === 0 ||
    id.length > 36 ||
    !/^[A-Za-z0-9-]+$/.test(id) ||
    isPlaceholder(id)
  ) {
    return {
      field: 'properties.$insert_id',
      message: "'properties.$insert_id' must be at most 36 alphanumeric or '-' characters",
    };
  }
  return undefined;
}

function checkEventShape(item: unknown): Problem | undefined {
  if (!isObject(item)) return { field: 'event', message: 'each event must be an object' };
  if (typeof item.event !== 'string' || item.event.length === 0) {
    return { field: 'event', message: "'event' must be a non-empty string" };
  }
  if (!isObject(item.properties)) return { field: 'properties', message: "'properties' must be an object" };
  if (Object.keys(item.properties).length > 255) {
    return { field: 'properties', message: 'too many properties: at most 255' };
  }
  return undefined;
}

function checkDistinctId(id: unknown, required: boolean): Problem | undefined {
  if (id === undefined && !required) return undefined;
  if (typeof id !== 'string') {
    return { field: 'properties.distinct_id', message: "'properties.distinct_id' must be a string" };
  }
  if (isPlaceholder(id)) {
    return { field: 'properties.distinct_id', message: `'properties.distinct_id' is an invalid ID: "${id}"` };
  }
  return undefined;
}

/** `/import`: `time`, `distinct_id` and `$insert_id` are required. */
export function checkImportEvent(item: unknown, now: number): Problem | undefined {
  const shape = checkEventShape(item);
  if (shape) return shape;
  const properties = (item as JsonObject).properties as JsonObject;
  return (
    checkTime(properties.time, now, true) ??
    checkDistinctId(properties.distinct_id, true) ??
    checkInsertId(properties.$insert_id, true)
  );
}

/** `/track`: authenticated by `properties.token`; `time` and `$insert_id` are optional. */
export function checkTrackEvent(item: unknown, now: number, token: string): Problem | undefined {
  const shape = checkEventShape(item);
  if (shape) return shape;
  const properties = (item as JsonObject).properties as JsonObject;
  if (properties.token !== token) return { field: 'properties.token', message: 'invalid project token' };
  return (
    checkTime(properties.time, now, false) ??
    checkDistinctId(properties.distinct_id, false) ??
    checkInsertId(properties.$insert_id, false)
  );
}

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
export const GROUP_OPERATIONS = ['$set', '$set_once', '$union', '$remove', '$unset', '$delete'] as const;

function checkOperation(update: JsonObject, allowed: readonly string[]): Problem | undefined {
  const all = PROFILE_OPERATIONS as readonly string[];
  const present = Object.keys(update).filter((key) => all.includes(key));
  if (present.length !== 1) {
    return { field: 'operation', message: `exactly one operation is required, got ${present.length}` };
  }
  const op = present[0] as string;
  if (!allowed.includes(op)) return { field: op, message: `${op} is not supported here` };
  const value = update[op];
  if (op === '$delete') return undefined;
  if (op === '$unset') {
    return Array.isArray(value) && value.every((name) => typeof name === 'string')
      ? undefined
      : { field: op, message: '$unset takes a list of property names' };
  }
  if (!isObject(value)) return { field: op, message: `${op} takes an object` };
  if (op === '$add' && !Object.values(value).every((n) => typeof n === 'number' && Number.isFinite(n))) {
    return { field: op, message: '$add values must be numbers' };
  }
  if (op === '$union' && !Object.values(value).every(Array.isArray)) {
    return { field: op, message: '$union values must be lists' };
  }
  return undefined;
}

/** `/engage`: `$token`, `$distinct_id`, exactly one operation. */
export function checkProfileUpdate(item: unknown, token: string): Problem | undefined {
  if (!isObject(item)) return { field: 'update', message: 'each update must be an object' };
  if (item.$token !== token) return { field: '$token', message: 'invalid project token' };
  if (typeof item.$distinct_id !== 'string' || item.$distinct_id === '' || isPlaceholder(item.$distinct_id)) {
    return { field: '$distinct_id', message: '$distinct_id is missing or invalid' };
  }
  return checkOperation(item, PROFILE_OPERATIONS);
}

/** `/groups`: `$token`, `$group_key`, `$group_id`, one of the group operations. */
export function checkGroupUpdate(item: unknown, token: string): Problem | undefined {
  if (!isObject(item)) return { field: 'update', message: 'each update must be an object' };
  if (item.$token !== token) return { field: '$token', message: 'invalid project token' };
  if (typeof item.$group_key !== 'string' || item.$group_key === '') {
    return { field: '$group_key', message: '$group_key is missing' };
  }
  if (typeof item.$group_id !== 'string' || item.$group_id === '' || isPlaceholder(item.$group_id)) {
    return { field: '$group_id', message: '$group_id is missing or invalid' };
  }
  return checkOperation(item, GROUP_OPERATIONS);
}

function same(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Applies one valid update to a profile's properties as Mixpanel documents the operations.
 * Returns `undefined` when the update deletes the profile.
 */
export function applyOperation(state: JsonObject | undefined, update: JsonObject): JsonObject | undefined {
  const next: JsonObject = { ...state };
  if ('$delete' in update) return undefined;
  if (isObject(update.$set)) Object.assign(next, update.$set);
  if (isObject(update.$set_once)) {
    for (const [key, value] of Object.entries(update.$set_once)) if (!(key in next)) next[key] = value;
  }
  if (isObject(update.$add)) {
    for (const [key, value] of Object.entries(update.$add)) {
      const current = next[key];
      next[key] = (typeof current === 'number' ? current : 0) + (value as number);
    }
  }
  const listOf = (key: string): Json[] => {
    const current = next[key];
    if (Array.isArray(current)) return [...current];
    return current === undefined ? [] : [current];
  };
  if (isObject(update.$append)) {
    for (const [key, value] of Object.entries(update.$append)) next[key] = [...listOf(key), value];
  }
  if (isObject(update.$union)) {
    for (const [key, values] of Object.entries(update.$union)) {
      const list = listOf(key);
      for (const value of values as Json[]) if (!list.some((item) => same(item, value))) list.push(value);
      next[key] = list;
    }
  }
  if (isObject(update.$remove)) {
    for (const [key, value] of Object.entries(update.$remove)) {
      if (Array.isArray(next[key])) next[key] = (next[key] as Json[]).filter((item) => !same(item, value));
    }
  }
  if (Array.isArray(update.$unset)) for (const key of update.$unset) delete next[key as string];
  return next;
}
