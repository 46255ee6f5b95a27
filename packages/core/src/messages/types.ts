import type { PROFILE_OPERATIONS } from './limits.js';

/** A JSON value as it leaves idstitch, after sanitising. */
export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
/** A flat bag of sanitised properties, as sent to Mixpanel. */
export type Properties = Record<string, JsonValue>;

/** Properties every event carries once the tracker has stamped it. */
export interface EventProperties {
  /** `$user_id`, or `$device:<device id>` (Simplified); the current ID (Original). */
  distinct_id: string;
  /** Milliseconds since the epoch, set once when the event is created and kept across retries. */
  time: number;
  /** Unique per event (UUIDv4, 36 characters); Mixpanel deduplicates on it. */
  $insert_id: string;
  $device_id?: string;
  $user_id?: string;
  /** Project token; added by sinks that need it, never by the tracker. */
  token?: string;
  [key: string]: JsonValue | undefined;
}

/** One event in Mixpanel's ingestion shape. */
export interface MixpanelEvent {
  event: string;
  properties: EventProperties;
}

/** Operations of Mixpanel's `/engage` and `/groups` endpoints. */
export type ProfileOperation = (typeof PROFILE_OPERATIONS)[number];

interface ProfileOperations {
  $set?: Properties;
  $set_once?: Properties;
  $add?: Record<string, number>;
  $append?: Properties;
  $union?: Record<string, JsonValue[]>;
  $remove?: Properties;
  $unset?: string[];
  /** The value is ignored by Mixpanel; idstitch sends `""`. */
  $delete?: '';
}

/** One user-profile update in `/engage` shape: exactly one operation per update. */
export interface ProfileUpdate extends ProfileOperations {
  $distinct_id: string;
  /** Project token; added by sinks that need it. */
  $token?: string;
  /** Client IP for geolocation, present only when the app opted in. */
  $ip?: string;
  /** Milliseconds since the epoch when the update was made. */
  $time?: number;
  $ignore_time?: boolean;
  $ignore_alias?: boolean;
}

/** One group-profile update in `/groups` shape: exactly one operation per update. */
export interface GroupUpdate extends Omit<ProfileOperations, '$add' | '$append'> {
  $group_key: string;
  $group_id: string;
  $token?: string;
}

/** What a tracker hands to a sink. Messages of different kinds go to different Mixpanel endpoints. */
export type OutgoingMessage =
  | { kind: 'event'; payload: MixpanelEvent }
  | { kind: 'profile'; payload: ProfileUpdate }
  | { kind: 'group'; payload: GroupUpdate };

/** Why a message was not delivered. Every drop is counted under exactly one reason. */
export type DropReason =
  /** The visitor opted out (Global Privacy Control or the opt-out cookie). */
  | 'consent'
  /** The message broke one of Mixpanel's rules and was rejected before sending. */
  | 'invalid'
  /** The delivery queue was full. */
  | 'queue_overflow'
  /** Mixpanel answered that the message is invalid (strict-mode `failed_records`, a body of `0`, 4xx). */
  | 'rejected'
  /** Retries ran out of attempts or time. */
  | 'retries_exhausted'
  /** `close()` ran out of time before the message was delivered. */
  | 'shutdown_timeout'
  /** The message was produced after the sink was closed. */
  | 'after_close'
  /** The event came from a crawler that mixpanel-browser refuses to track (`requestProperties.dropBots`). */
  | 'bot'
  /**
   * A profile or group update that adds, appends or removes (not idempotent) was being sent when the
   * process died; Mixpanel may have applied it, and `/engage` has no deduplication, so the spool does
   * not send it again.
   */
  | 'in_doubt'
  /** The message was held on the disk spool only, and its record was found damaged or gone when read back. */
  | 'spool_damaged';

/** Every drop reason, in a fixed order: counters keyed by it always have every key. */
export const DROP_REASONS: readonly DropReason[] = [
  'consent',
  'invalid',
  'queue_overflow',
  'rejected',
  'retries_exhausted',
  'shutdown_timeout',
  'after_close',
  'bot',
  'in_doubt',
  'spool_damaged',
];

/**
 * Where tracked messages go. Implementations must never throw from `write` and never block on I/O
 * there: tracking must not break the request it observes.
 */
export interface Sink {
  /** Accepts one message for delivery. */
  write(message: OutgoingMessage): void;
  /**
   * Counts a message the producer dropped before it reached the sink (consent, invalid input), so that
   * the sink's counters still satisfy `tracked = delivered + dropped`.
   */
  recordDrop?(reason: DropReason, count?: number): void;
  /** Resolves once everything written before the call is delivered or definitively failed. */
  flush(): Promise<void>;
  /** Flushes within `timeoutMs`, stops timers, reports what could not be delivered. */
  close(timeoutMs?: number): Promise<void>;
}
