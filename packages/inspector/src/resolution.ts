import type { IdMergeMode, Properties } from '@idstitch/core';

/**
 * What {@link resolveIdentities} takes and returns: plain data describing clusters, operations, events and
 * profiles as Mixpanel's ID Merge would leave them.
 */
export interface ResolveOptions {
  /** The ID Merge API to reproduce. */
  mode: IdMergeMode;
  /**
   * Most IDs one cluster may hold in Original ID Merge; a merge that would exceed it is refused.
   * Default {@link CLUSTER_ID_LIMIT} (500), Mixpanel's limit. Lower it only to exercise the rule in tests.
   */
  clusterLimit?: number;
}

/** The identity operation an event asked for. */
export type IdentityOperationKind =
  /** Simplified: an event carrying both `$device_id` and `$user_id`. */
  | 'link'
  /** Original: `$identify` (`$anon_id` into `$identified_id`). */
  | 'identify'
  /** Original: `$create_alias` (`alias` pointing at `distinct_id`). */
  | 'alias'
  /** Original: `$merge` of `$distinct_ids[0]` and `$distinct_ids[1]`. */
  | 'merge';

/** Why Mixpanel would not perform an identity operation. */
export type RefusalReason =
  /** Simplified: the device is already linked to another `$user_id`; a device is never re-linked. */
  | 'device_already_linked'
  /** Simplified: `$identify`, `$create_alias` and `$merge` are ignored for merging. */
  | 'ignored_in_simplified'
  /** Original: `$identify` merges only an `$anon_id` in UUIDv4 format. */
  | 'anon_not_uuid_v4'
  /** Original: the `$anon_id` was already merged with another ID. */
  | 'anon_already_merged'
  /** Original: the alias already points at an ID in another cluster; an alias points at one ID only. */
  | 'alias_points_elsewhere'
  /** Original: the alias is already part of another cluster, so it cannot become an alias of this one. */
  | 'alias_already_merged'
  /** Original: the merged cluster would hold more IDs than the limit (500). */
  | 'cluster_limit'
  /** The event lacks the IDs its operation needs (e.g. `$identify` without `$anon_id`). */
  | 'missing_ids';

/** What one identity-bearing event did to the clusters. */
export interface IdentityOperation {
  /** Position of the event in the resolved message list. */
  index: number;
  kind: IdentityOperationKind;
  /**
   * The two IDs the event asked to join, as distinct_id values: `[device, user]` for `link`,
   * `[anon, identified]` for `identify`, `[alias, target]` for `alias`, the pair for `merge`.
   * An ID missing from the event is `''`.
   */
  ids: readonly [string, string];
  /** `merged` joined two clusters; `unchanged` found them joined already; `refused` left them apart. */
  outcome: 'merged' | 'unchanged' | 'refused';
  reason?: RefusalReason;
  /** For refusals caused by an earlier merge: the ID that earlier merge tied the first ID to. */
  conflictsWith?: string;
  /** IDs in the resulting cluster (`merged`, `unchanged`) or in the two clusters combined (`refused`). */
  clusterSize: number;
}

/** One event with the distinct_id Mixpanel would give it, then and now. */
export interface ResolvedEvent {
  /** Position of the event in the resolved message list. */
  index: number;
  event: string;
  deviceId: string | null;
  userId: string | null;
  /** `properties.distinct_id` exactly as sent; `null` when the event had none. */
  distinctIdSent: string | null;
  /**
   * The distinct_id Mixpanel sets at ingestion (the guides' "distinct_id (set by Mixpanel)" column).
   * Simplified: `$user_id`, else `$device:<$device_id>`, else the sent distinct_id. Original: the sent
   * distinct_id (or `$identified_id` for an `$identify` without one). `''` when the event has no ID at all.
   */
  distinctId: string;
  /** Canonical distinct_id of the event's cluster right after the event was ingested. */
  resolvedAtIngestion: string;
  /** Canonical distinct_id of the event's cluster once every message has been processed. */
  resolved: string;
  /** `resolved` differs from `distinctId`: the guides show these as `$device:D1 ⇒ U1`. */
  changed: boolean;
  /** A merge that came after this event changed what it resolves to ("Retroactively updated"). */
  retroactive: boolean;
  /** The identity operation this event asked for, when it asked for one. */
  operation?: IdentityOperation;
  time?: number;
  insertId?: string;
}

/** A set of IDs Mixpanel treats as one user. */
export interface IdentityCluster {
  /** The cluster's canonical distinct_id: the `$user_id` in Simplified; in Original see {@link resolveIdentities}. */
  id: string;
  /** Every ID in the cluster as a distinct_id value (`$device:<id>` for Simplified devices), in join order. */
  ids: string[];
  /** IDs known to belong to a signed-in user (Simplified: the `$user_id`). */
  userIds: string[];
  /** True when no ID in the cluster belongs to a known user. */
  anonymous: boolean;
  /** Positions of the events that resolve to this cluster, in order. */
  events: number[];
  /** Keys of the profiles that live in this cluster (see {@link ResolvedProfile.key}). */
  profiles: string[];
}

/** A user profile as the profile updates left it. */
export interface ResolvedProfile {
  /**
   * The distinct_id the profile is stored under: the canonical ID of the cluster the first update resolved
   * to at the time. Mixpanel keys profiles by distinct_id and does not carry them over when IDs merge later.
   */
  key: string;
  /** Canonical distinct_id of the cluster the key belongs to now. */
  resolved: string;
  /** The key belonged to no known user when the profile was created. */
  anonymous: boolean;
  /** The key is no longer its cluster's canonical ID, so Mixpanel's user view does not show these properties. */
  orphaned: boolean;
  /** A `$delete` removed the profile. */
  deleted: boolean;
  properties: Properties;
  /** Positions of the profile updates that touched this profile, in order. */
  updates: number[];
}

/** Everything {@link resolveIdentities} worked out. Plain data, so it can be compared and serialised. */
export interface Resolution {
  mode: IdMergeMode;
  clusterLimit: number;
  /** One entry per event message, in message order. */
  events: ResolvedEvent[];
  /** Every identity operation, in message order (Simplified: first links and refused links only). */
  operations: IdentityOperation[];
  /** Clusters in order of their first ID's first appearance. */
  clusters: IdentityCluster[];
  /** Profiles in order of creation. */
  profiles: ResolvedProfile[];
  /** Number of group-profile updates seen; they do not take part in identity. */
  groupUpdates: number;
}
