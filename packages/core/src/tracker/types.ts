import type { CurrentIdentity } from '../identity/request-identity.js';

/** Property values an app may pass; anything else is repaired or dropped with a reported reason. */
export type PropertyInput = Record<string, unknown>;

/** Per-call options of {@link Tracker.track}. */
export interface TrackEventOptions {
  /**
   * Your own `$insert_id` for this event (1-36 letters, digits or `-`), so that Mixpanel deduplicates a retried
   * delivery of the same business event (an order ID, a webhook delivery ID). Default: a fresh UUIDv4 per event.
   * A `$insert_id` inside the properties is ignored: properties are often request bodies, and a body must not
   * choose how its event is deduplicated.
   */
  insertId?: string;
}

/** Profile operations on the current user (Mixpanel `/engage`). Held until identify while anonymous. */
export interface PeopleOperations {
  /** `$set`: create or overwrite properties. */
  set(properties: PropertyInput): void;
  set(name: string, value: unknown): void;
  /** `$set_once`: set only properties not already present. */
  setOnce(properties: PropertyInput): void;
  setOnce(name: string, value: unknown): void;
  /** `$add`: increment numeric properties (negative to decrement). */
  increment(properties: Record<string, number>): void;
  increment(name: string, by?: number): void;
  /** `$append`: append values to list properties. */
  append(properties: PropertyInput): void;
  append(name: string, value: unknown): void;
  /** `$union`: add values to list properties, without duplicates. */
  union(properties: Record<string, unknown[]>): void;
  union(name: string, values: unknown[]): void;
  /** `$remove`: remove a value from list properties. */
  remove(properties: PropertyInput): void;
  remove(name: string, value: unknown): void;
  /** `$unset`: delete properties. */
  unset(names: string | readonly string[]): void;
  /** `$delete`: delete the whole profile. */
  deleteProfile(): void;
}

/**
 * The request-scoped tracker. Every method is synchronous, never throws and never waits on the network:
 * bad input is dropped or repaired and reported to `onError`.
 */
export interface Tracker {
  /**
   * Tracks an event stamped with the visitor's IDs, time, `$insert_id` and request facts. Identity fields in
   * `properties` (`distinct_id`, `$device_id`, `$user_id`, `$anon_id`, `$identified_id`, `token`, `ip`,
   * `$insert_id`) are dropped and reported: identity is the engine's. A `time` property (a `Date`, or seconds or
   * milliseconds since the epoch) back-dates the event; pass your own insert ID as `options.insertId`.
   */
  track(event: string, properties?: PropertyInput, options?: TrackEventOptions): void;
  /**
   * Says who the user is now (for example right after signup, before the session exists). Links the device,
   * applies held anonymous profile updates, then `$set`s `traits`. A `company` trait with an `id` becomes a
   * group profile (`group('company', id, rest)`).
   */
  identify(userId: string | number, traits?: PropertyInput): void;
  /** Original ID Merge only: `$create_alias` pointing `alias` at the current ID. */
  alias(alias: string): void;
  /** Original ID Merge only: `$merge` of two IDs' clusters (delivered through `/import`). */
  merge(distinctIdA: string, distinctIdB: string): void;
  /** Forgets the device: a fresh device ID (and cookie); the visitor is anonymous until the signed-in user changes. */
  reset(): void;
  /** Properties added to every later event of this request. */
  register(properties: PropertyInput): void;
  readonly people: PeopleOperations;
  /** Appends a transaction to the profile's `$transactions` (Mixpanel's legacy revenue). */
  trackCharge(amount: number, properties?: PropertyInput): void;
  /** Puts the user in group `key` = `id`: later events carry it, the profile lists it, `traits` go to the group profile. */
  group(key: string, id: string | number, traits?: PropertyInput): void;
  /** The visitor's IDs right now (reconciled with the app's auth). */
  readonly identity: CurrentIdentity & { distinctId: string | undefined };
  /** True when the visitor opted out: nothing is sent. */
  readonly optedOut: boolean;
}
