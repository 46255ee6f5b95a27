import { MIXPANEL_LIMITS } from './limits.js';
import type { JsonValue, Properties } from './types.js';

/** One repair or drop made while sanitising a property object. */
export interface SanitizeIssue {
  /** Dotted path of the property, e.g. `cart.items.3`. */
  path: string;
  reason: string;
}

export interface SanitizeResult {
  properties: Properties;
  issues: SanitizeIssue[];
  /** Upper-bound estimate of the serialised size, cheap to compute while walking. */
  estimatedBytes: number;
}

/**
 * Fields that decide who a message is about, or that only idstitch may stamp: `distinct_id`, `$device_id`,
 * `$user_id`, `$anon_id`, `$identified_id`, the project `token`, the geolocation `ip` and `$insert_id` (with their
 * `/engage` spellings). A property object is attacker-written (a request body passed to `track()`), so these keys
 * are dropped from it before the tracker stamps its own: an empty slot must never let a body fill it.
 */
export const IDENTITY_FIELDS: ReadonlySet<string> = new Set([
  'distinct_id',
  '$distinct_id',
  '$device_id',
  '$user_id',
  '$anon_id',
  '$identified_id',
  'token',
  '$token',
  'ip',
  '$ip',
  '$insert_id',
]);

/** Keys that would reach an object's prototype if copied carelessly downstream. */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * The fast path's one lookup per key: 1 for a prototype key, 2 for an identity field (the two sets never share a
 * key). Two Set lookups per key were about 1.3k instructions for a ten-property event.
 */
const SPECIAL_KEYS: ReadonlyMap<string, 1 | 2> = new Map([
  ...[...PROTOTYPE_KEYS].map((key) => [key, 1] as const),
  ...[...IDENTITY_FIELDS].map((key) => [key, 2] as const),
]);
const CIRCULAR = '[Circular]';
/** Marks "value not read yet" where `undefined` is a value. */
const NOT_READ: unique symbol = Symbol('not read');

class Walker {
  readonly issues: SanitizeIssue[] = [];
  bytes = 2;
  readonly ancestors = new Set<object>();

  constructor(
    private readonly truncateQuietly: boolean,
    private readonly dropIdentityFields: boolean,
  ) {}

  object(input: object, path: string, depth: number): { [key: string]: JsonValue } {
    const out: { [key: string]: JsonValue } = {};
    let keys: string[];
    try {
      keys = Object.keys(input);
    } catch (error) {
      this.issue(path, `could not list keys (${describe(error)})`);
      return out;
    }
    this.ancestors.add(input);
    this.entries(input, keys, 0, out, 0, path, depth, NOT_READ);
    this.ancestors.delete(input);
    return out;
  }

  /**
   * Sanitises `keys[start..]` of `input` into `out`, which already holds `kept` entries. `raw` is the value of
   * `keys[start]` when it was already read (by the fast path, which must not run a getter twice), else
   * {@link NOT_READ}. `input` must be in `ancestors`.
   */
  entries(
    input: object,
    keys: readonly string[],
    start: number,
    out: { [key: string]: JsonValue },
    kept: number,
    path: string,
    depth: number,
    raw: unknown,
  ): void {
    const limit = depth === 0 ? MIXPANEL_LIMITS.maxProperties : MIXPANEL_LIMITS.maxContainerEntries;
    for (let i = start; i < keys.length; i++) {
      const key = keys[i] as string;
      const childPath = path === '' ? key : `${path}.${key}`;
      if (PROTOTYPE_KEYS.has(key)) {
        this.issue(childPath, 'dropped: prototype key');
        continue;
      }
      if (depth === 0 && this.dropIdentityFields && IDENTITY_FIELDS.has(key)) {
        this.issue(childPath, 'dropped: an identity field only idstitch sets');
        continue;
      }
      if (key.length === 0 || key.length > MIXPANEL_LIMITS.maxKeyLength) {
        this.issue(
          childPath.slice(0, 80),
          `dropped: key must be 1-${MIXPANEL_LIMITS.maxKeyLength} characters`,
        );
        continue;
      }
      let read = raw;
      raw = NOT_READ;
      if (read === NOT_READ) {
        try {
          read = (input as Record<string, unknown>)[key];
        } catch (error) {
          this.issue(childPath, `dropped: getter threw (${describe(error)})`);
          continue;
        }
      }
      const value = this.value(read, childPath, depth + 1);
      if (value === undefined) continue;
      if (kept === limit) {
        this.issue(path || '(root)', `dropped keys beyond the first ${limit}`);
        break;
      }
      out[key] = value;
      this.bytes += key.length + 4;
      kept++;
    }
  }

  /** Returns the JSON-safe value, or `undefined` when the property is to be left out. */
  value(raw: unknown, path: string, depth: number): JsonValue | undefined {
    switch (typeof raw) {
      case 'string':
        return this.string(raw, path);
      case 'number':
        if (Number.isFinite(raw)) {
          this.bytes += 24;
          // JSON has no negative zero; normalise so what we report is what is sent.
          return raw === 0 ? 0 : raw;
        }
        this.issue(path, `replaced ${raw} with null`);
        this.bytes += 4;
        return null;
      case 'boolean':
        this.bytes += 5;
        return raw;
      case 'bigint':
        return this.string(raw.toString(), path);
      case 'undefined':
        return undefined;
      case 'function':
      case 'symbol':
        this.issue(path, `dropped: a ${typeof raw} is not serialisable`);
        return undefined;
    }
    if (raw === null) {
      this.bytes += 4;
      return null;
    }
    const object = raw as object;
    if (this.ancestors.has(object)) {
      this.issue(path, 'replaced circular reference');
      return this.string(CIRCULAR, path);
    }
    if (object instanceof Date) {
      const time = object.getTime();
      if (Number.isNaN(time)) {
        this.issue(path, 'replaced invalid Date with null');
        return null;
      }
      return this.string(object.toISOString(), path);
    }
    if (depth > MIXPANEL_LIMITS.maxDepth) {
      this.issue(path, `dropped: nested deeper than ${MIXPANEL_LIMITS.maxDepth} levels`);
      return undefined;
    }
    if (Array.isArray(object)) return this.list(object, path, depth);
    if (object instanceof Set || object instanceof Map) return this.collection(object, path, depth);
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      try {
        return this.value(toJSON.call(object), path, depth);
      } catch (error) {
        this.issue(path, `dropped: toJSON threw (${describe(error)})`);
        return undefined;
      }
    }
    return this.object(object, path, depth);
  }

  /** Sets become lists; Maps become objects keyed by their primitive keys (others are dropped). */
  private collection(
    object: Set<unknown> | Map<unknown, unknown>,
    path: string,
    depth: number,
  ): JsonValue | undefined {
    try {
      if (object instanceof Set) return this.list([...object], path, depth);
      const entries: [string, unknown][] = [];
      for (const [key, value] of object) {
        if (
          typeof key === 'string' ||
          typeof key === 'number' ||
          typeof key === 'boolean' ||
          typeof key === 'bigint'
        ) {
          entries.push([String(key), value]);
        } else {
          this.issue(path, `dropped a Map entry whose key is a ${key === null ? 'null' : typeof key}`);
        }
      }
      return this.object(Object.fromEntries(entries), path, depth);
    } catch (error) {
      this.issue(path, `dropped: could not read the collection (${describe(error)})`);
      return undefined;
    }
  }

  private list(items: unknown[], path: string, depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.ancestors.add(items);
    const length = Math.min(items.length, MIXPANEL_LIMITS.maxContainerEntries);
    if (items.length > length) this.issue(path, `dropped elements beyond the first ${length}`);
    for (let i = 0; i < length; i++) {
      const value = this.value(items[i], `${path}.${i}`, depth + 1);
      out.push(value === undefined ? null : value);
    }
    this.ancestors.delete(items);
    return out;
  }

  private string(raw: string, path: string): string {
    let value = raw.isWellFormed() ? raw : raw.toWellFormed();
    if (value !== raw) this.issue(path, 'replaced lone surrogates with U+FFFD');
    if (value.length > MIXPANEL_LIMITS.maxStringLength) {
      let end = MIXPANEL_LIMITS.maxStringLength;
      // Never cut a surrogate pair in half.
      if (/[\uD800-\uDBFF]/.test(value.charAt(end - 1))) end--;
      value = value.slice(0, end);
      if (!this.truncateQuietly) this.issue(path, `truncated to ${end} characters`);
    }
    this.bytes += value.length * 3 + 2;
    return value;
  }

  issue(path: string, reason: string): void {
    if (this.issues.length < 50) this.issues.push({ path, reason });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Turns app-supplied properties into what Mixpanel accepts, reporting every repair and drop:
 * own enumerable keys only, no prototype keys, cycles replaced, BigInt as decimal strings, NaN and
 * Infinity as null, Dates as ISO strings, functions and symbols dropped, Mixpanel's size, count and
 * depth limits applied. Never throws, whatever the input.
 */
export function sanitizeProperties(
  input: unknown,
  options: {
    truncateQuietly?: boolean;
    /** Drop top-level {@link IDENTITY_FIELDS} (with a reported issue). The tracker always does. */
    dropIdentityFields?: boolean;
  } = {},
): SanitizeResult {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) {
    return sanitizeWithoutFastPath(input, options);
  }
  const dropIdentityFields = options.dropIdentityFields ?? false;
  let keys: string[];
  try {
    keys = Object.keys(input);
  } catch (error) {
    // As the walker reports it, without asking a hostile proxy for its keys twice.
    const walker = new Walker(options.truncateQuietly ?? false, dropIdentityFields);
    walker.issue('', `could not list keys (${describe(error)})`);
    return finish(walker, {});
  }
  // The fast path: a flat object of short well-formed strings, finite numbers, booleans and null, the usual
  // `track()` call, needs no walker, no paths and no issues. At the first key or value it does not handle, the
  // walker takes over from that key with what was built so far (and the value already read: a getter runs once),
  // so the result is the same as the walker's alone. sanitize.test.ts holds the two to that.
  const out: Properties = {};
  let bytes = 2;
  let kept = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const special = SPECIAL_KEYS.get(key);
    if (
      key.length === 0 ||
      key.length > MIXPANEL_LIMITS.maxKeyLength ||
      (special !== undefined && (special === 1 || dropIdentityFields))
    ) {
      return resume(input, keys, i, out, kept, bytes, NOT_READ, options);
    }
    let raw: unknown;
    try {
      raw = (input as Record<string, unknown>)[key];
    } catch (error) {
      // Reported as the walker would, which must not run the getter again.
      const thrown = { path: key, reason: `dropped: getter threw (${describe(error)})` };
      return resume(input, keys, i + 1, out, kept, bytes, NOT_READ, options, thrown);
    }
    let size: number;
    switch (typeof raw) {
      case 'string':
        if (raw.length > MIXPANEL_LIMITS.maxStringLength || !raw.isWellFormed()) {
          return resume(input, keys, i, out, kept, bytes, raw, options);
        }
        size = raw.length * 3 + 2;
        break;
      case 'number':
        if (!Number.isFinite(raw)) return resume(input, keys, i, out, kept, bytes, raw, options);
        // JSON has no negative zero, as in the walker.
        if (raw === 0) raw = 0;
        size = 24;
        break;
      case 'boolean':
        size = 5;
        break;
      case 'undefined':
        continue;
      default:
        if (raw !== null) return resume(input, keys, i, out, kept, bytes, raw, options);
        size = 4;
    }
    if (kept === MIXPANEL_LIMITS.maxProperties) return resume(input, keys, i, out, kept, bytes, raw, options);
    out[key] = raw as JsonValue;
    bytes += size + key.length + 4;
    kept++;
  }
  return { properties: out, issues: [], estimatedBytes: bytes };
}

/** The walker, from key `start` on, continuing what the fast path built. */
function resume(
  input: object,
  keys: readonly string[],
  start: number,
  out: Properties,
  kept: number,
  bytes: number,
  raw: unknown,
  options: { truncateQuietly?: boolean; dropIdentityFields?: boolean },
  thrown?: SanitizeIssue,
): SanitizeResult {
  const walker = new Walker(options.truncateQuietly ?? false, options.dropIdentityFields ?? false);
  if (thrown !== undefined) walker.issue(thrown.path, thrown.reason);
  walker.bytes = bytes;
  walker.ancestors.add(input);
  walker.entries(input, keys, start, out, kept, '', 0, raw);
  walker.ancestors.delete(input);
  return finish(walker, out);
}

/**
 * {@link sanitizeProperties} without its fast path: the walker over every key. Exported for the differential
 * test that proves the fast path changes nothing; not part of the package's API.
 */
export function sanitizeWithoutFastPath(
  input: unknown,
  options: { truncateQuietly?: boolean; dropIdentityFields?: boolean } = {},
): SanitizeResult {
  const walker = new Walker(options.truncateQuietly ?? false, options.dropIdentityFields ?? false);
  if (input === undefined || input === null) return { properties: {}, issues: [], estimatedBytes: 2 };
  if (typeof input !== 'object' || Array.isArray(input)) {
    walker.issue(
      '(root)',
      `properties must be a plain object, got ${Array.isArray(input) ? 'array' : typeof input}`,
    );
    return { properties: {}, issues: walker.issues, estimatedBytes: 2 };
  }
  return finish(walker, walker.object(input, '', 0));
}

/** Drops list and object properties over Mixpanel's per-property size. */
function finish(walker: Walker, properties: Properties): SanitizeResult {
  for (const [key, value] of Object.entries(properties)) {
    if (value === null || typeof value !== 'object') continue;
    const size = JSON.stringify(value).length;
    if (size > MIXPANEL_LIMITS.maxContainerBytes) {
      delete properties[key];
      walker.issue(key, `dropped: ${size} bytes exceeds the ${MIXPANEL_LIMITS.maxContainerBytes}-byte limit`);
    }
  }
  return { properties, issues: walker.issues, estimatedBytes: walker.bytes };
}
