import type { IdMergeMode, JsonValue, OutgoingMessage, ProfileUpdate, Properties } from '@idstitch/core';
import { isUuidV4 } from '@idstitch/core';

export type { IdMergeMode };

/** Mixpanel's limit on the IDs one identity cluster may hold (Original ID Merge). */
export const CLUSTER_ID_LIMIT = 500;

/** Prefix Simplified ID Merge puts in front of a `$device_id` to form an anonymous `distinct_id`. */
export const DEVICE_PREFIX = '$device:';

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

const IDENTITY_EVENTS: ReadonlySet<string> = new Set(['$identify', '$create_alias', '$merge']);

function text(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

interface IdNode {
  firstSeen: number;
  /** Message position from which the ID is known to belong to a user; `undefined` while anonymous. */
  knownAt: number | undefined;
  cluster: ClusterState;
}

interface ClusterState {
  ids: string[];
  canonical: string;
}

/**
 * Identity clusters with a canonical ID per cluster. Merging moves the smaller cluster into the larger, so a
 * long log resolves in O(n log n) without a union-find's path bookkeeping.
 */
class ClusterStore {
  readonly nodes = new Map<string, IdNode>();
  /** Every cluster ever created; merged-away clusters stay here emptied and are skipped at the end. */
  readonly created: ClusterState[] = [];

  constructor(private readonly isKnownAtFirstSight: (id: string) => boolean) {}

  ensure(id: string, index: number): IdNode {
    let node = this.nodes.get(id);
    if (node === undefined) {
      const cluster: ClusterState = { ids: [id], canonical: id };
      node = { firstSeen: index, knownAt: this.isKnownAtFirstSight(id) ? index : undefined, cluster };
      this.nodes.set(id, node);
      this.created.push(cluster);
    }
    return node;
  }

  /** Canonical ID of the cluster holding `id`, or `id` itself when it was never seen. */
  canonical(id: string): string {
    return this.nodes.get(id)?.cluster.canonical ?? id;
  }

  size(id: string): number {
    return this.nodes.get(id)?.cluster.ids.length ?? 1;
  }

  together(a: string, b: string): boolean {
    const na = this.nodes.get(a);
    return na !== undefined && na.cluster === this.nodes.get(b)?.cluster;
  }

  markKnown(id: string, index: number): void {
    const node = this.ensure(id, index);
    if (node.knownAt !== undefined) return;
    node.knownAt = index;
    if (this.outranks(id, node.cluster.canonical)) node.cluster.canonical = id;
  }

  isKnown(id: string): boolean {
    return this.nodes.get(id)?.knownAt !== undefined;
  }

  merge(a: string, b: string): ClusterState {
    const ca = this.nodes.get(a)!.cluster;
    const cb = this.nodes.get(b)!.cluster;
    if (ca === cb) return ca;
    const [into, from] = ca.ids.length >= cb.ids.length ? [ca, cb] : [cb, ca];
    for (const id of from.ids) {
      into.ids.push(id);
      this.nodes.get(id)!.cluster = into;
    }
    if (this.outranks(from.canonical, into.canonical)) into.canonical = from.canonical;
    from.ids = [];
    return into;
  }

  /**
   * Canonical choice: a known user's ID beats an anonymous one; among equals, the one known (or seen)
   * first. Mixpanel documents Original's choice as arbitrary; a stable, user-first choice keeps reports
   * readable and deterministic.
   */
  private outranks(a: string, b: string): boolean {
    const na = this.nodes.get(a)!;
    const nb = this.nodes.get(b)!;
    if ((na.knownAt === undefined) !== (nb.knownAt === undefined)) return na.knownAt !== undefined;
    const ka = na.knownAt ?? na.firstSeen;
    const kb = nb.knownAt ?? nb.firstSeen;
    return ka !== kb ? ka < kb : a < b;
  }
}

/** Applies one profile operation the way `/engage` does. */
function applyProfileOperation(profile: ResolvedProfile, update: ProfileUpdate): void {
  const props = profile.properties;
  if (update.$delete !== undefined) {
    profile.deleted = true;
    for (const key of Object.keys(props)) delete props[key];
    return;
  }
  // Removing things from a deleted profile leaves it deleted; anything that sets values brings it back.
  if (update.$unset === undefined && update.$remove === undefined) profile.deleted = false;
  if (update.$set) Object.assign(props, update.$set);
  if (update.$set_once) {
    for (const [key, value] of Object.entries(update.$set_once)) if (!(key in props)) props[key] = value;
  }
  if (update.$add) {
    for (const [key, value] of Object.entries(update.$add)) {
      const current = props[key];
      props[key] = (typeof current === 'number' ? current : 0) + (typeof value === 'number' ? value : 0);
    }
  }
  if (update.$append) {
    for (const [key, value] of Object.entries(update.$append)) {
      const current = props[key];
      props[key] = Array.isArray(current) ? [...current, value] : [value];
    }
  }
  if (update.$union) {
    for (const [key, values] of Object.entries(update.$union)) {
      const current = props[key];
      const list: JsonValue[] = Array.isArray(current) ? [...current] : [];
      const seen = new Set(list.map((v) => JSON.stringify(v)));
      for (const value of Array.isArray(values) ? values : []) {
        const k = JSON.stringify(value);
        if (!seen.has(k)) {
          seen.add(k);
          list.push(value);
        }
      }
      props[key] = list;
    }
  }
  if (update.$remove) {
    for (const [key, value] of Object.entries(update.$remove)) {
      const current = props[key];
      if (Array.isArray(current)) {
        const k = JSON.stringify(value);
        props[key] = current.filter((v) => JSON.stringify(v) !== k);
      }
    }
  }
  if (Array.isArray(update.$unset)) for (const key of update.$unset) delete props[key];
}

interface EventIds {
  event: string;
  deviceId: string | null;
  userId: string | null;
  distinctIdSent: string | null;
  distinctId: string;
}

function readEventIds(mode: IdMergeMode, properties: Record<string, unknown>, name: string): EventIds {
  const deviceId = text(properties.$device_id);
  const userId = text(properties.$user_id);
  const distinctIdSent = text(properties.distinct_id);
  let distinctId: string | null;
  if (mode === 'simplified') {
    // Mixpanel overrides any sent distinct_id once either ID property is present.
    distinctId = userId ?? (deviceId === null ? distinctIdSent : `${DEVICE_PREFIX}${deviceId}`);
  } else {
    distinctId =
      distinctIdSent ??
      (name === '$identify' ? text(properties.$identified_id) : null) ??
      (name === '$merge' && Array.isArray(properties.$distinct_ids)
        ? text(properties.$distinct_ids[0])
        : null);
  }
  return { event: name, deviceId, userId, distinctIdSent, distinctId: distinctId ?? '' };
}

/**
 * Resolves identity over a message log exactly as Mixpanel's ID Merge does, so a team can see, before it owns
 * a Mixpanel project, which user every event and profile update ends up on.
 *
 * Simplified: the first event carrying both `$device_id` and `$user_id` links that device to that user
 * (`$identify`, `$create_alias` and `$merge` events never link); a linked device is never re-linked; two
 * `$user_id`s never merge; an event with only a `distinct_id` is a device when it starts with `$device:`,
 * else a user. The canonical distinct_id is the cluster's `$user_id`.
 *
 * Original: `$identify` merges `$anon_id` into `$identified_id` only when the anon ID is a UUIDv4 not already
 * merged with another ID; `$create_alias` adds `alias` to `distinct_id`'s cluster unless the alias already
 * points elsewhere (chains are fine); `$merge` joins any two clusters; a merge that would leave more than
 * `clusterLimit` IDs in a cluster is refused. Mixpanel picks the canonical ID arbitrarily; this resolver picks
 * the first ID known to be a user's (an `$identified_id`, a `$user_id`, or any non-UUID ID), else the first seen.
 *
 * In both, resolution is retroactive: every event resolves through the final clusters. Profile updates go to
 * the profile of the cluster's canonical ID at the time of the update, which is how a `$set` on a device ID
 * before login becomes a separate anonymous profile.
 *
 * Pure: the same messages always give the same result, and the input is never modified.
 */
export function resolveIdentities(messages: readonly OutgoingMessage[], options: ResolveOptions): Resolution {
  const { mode } = options;
  const clusterLimit = options.clusterLimit ?? CLUSTER_ID_LIMIT;
  const simplified = mode === 'simplified';
  // Simplified: anything not a `$device:` ID is a `$user_id`. Original: non-UUID IDs are chosen by the app,
  // so they name users; UUIDs are anonymous until an `$identify` or `$user_id` says otherwise.
  const store = new ClusterStore(
    simplified
      ? (id) => !id.startsWith(DEVICE_PREFIX)
      : (id) => !isUuidV4(id) && !id.startsWith(DEVICE_PREFIX),
  );
  /** Simplified: device distinct_id → the `$user_id` it is linked to. */
  const deviceLinks = new Map<string, string>();
  /** Original: alias → the ID it points at. */
  const aliasTargets = new Map<string, string>();
  const events: ResolvedEvent[] = [];
  const operations: IdentityOperation[] = [];
  const profiles = new Map<string, ResolvedProfile>();
  let groupUpdates = 0;

  const record = (
    index: number,
    kind: IdentityOperationKind,
    ids: readonly [string, string],
    outcome: IdentityOperation['outcome'],
    extra: { reason?: RefusalReason; conflictsWith?: string } = {},
  ): IdentityOperation => {
    const clusterSize =
      outcome === 'refused'
        ? ids[0] === '' || ids[1] === '' || store.together(ids[0], ids[1])
          ? store.size(ids[0] || ids[1])
          : store.size(ids[0]) + store.size(ids[1])
        : store.size(ids[0]);
    const operation: IdentityOperation = { index, kind, ids, outcome, ...extra, clusterSize };
    operations.push(operation);
    return operation;
  };

  const withinLimit = (a: string, b: string): boolean =>
    store.together(a, b) || store.size(a) + store.size(b) <= clusterLimit;

  const simplifiedOperation = (index: number, ids: EventIds): IdentityOperation | undefined => {
    if (IDENTITY_EVENTS.has(ids.event)) {
      const wanted: [string, string] =
        ids.deviceId !== null && ids.userId !== null
          ? [`${DEVICE_PREFIX}${ids.deviceId}`, ids.userId]
          : ['', ''];
      return record(index, 'link', wanted, 'refused', { reason: 'ignored_in_simplified' });
    }
    if (ids.deviceId === null || ids.userId === null) return undefined;
    const device = `${DEVICE_PREFIX}${ids.deviceId}`;
    store.ensure(device, index);
    const linkedTo = deviceLinks.get(device);
    // Every signed-in event repeats the pair; only the first link and the refusals are worth recording.
    if (linkedTo === ids.userId) return undefined;
    if (linkedTo !== undefined) {
      return record(index, 'link', [device, ids.userId], 'refused', {
        reason: 'device_already_linked',
        conflictsWith: linkedTo,
      });
    }
    deviceLinks.set(device, ids.userId);
    store.merge(device, ids.userId);
    return record(index, 'link', [device, ids.userId], 'merged');
  };

  const originalOperation = (
    index: number,
    name: string,
    properties: Record<string, unknown>,
  ): IdentityOperation | undefined => {
    if (name === '$identify') {
      // mixpanel-js names the field `$anon_distinct_id`; accept it so logs from the browser SDK resolve too.
      const anon = text(properties.$anon_id) ?? text(properties.$anon_distinct_id);
      const identified = text(properties.$identified_id);
      if (anon === null || identified === null) {
        return record(index, 'identify', [anon ?? '', identified ?? ''], 'refused', {
          reason: 'missing_ids',
        });
      }
      store.ensure(anon, index);
      store.markKnown(identified, index);
      const ids = [anon, identified] as const;
      if (store.together(anon, identified)) return record(index, 'identify', ids, 'unchanged');
      if (!isUuidV4(anon)) return record(index, 'identify', ids, 'refused', { reason: 'anon_not_uuid_v4' });
      if (store.size(anon) > 1) {
        const other = store.canonical(anon);
        return record(index, 'identify', ids, 'refused', {
          reason: 'anon_already_merged',
          conflictsWith: other,
        });
      }
      if (!withinLimit(anon, identified)) {
        return record(index, 'identify', ids, 'refused', { reason: 'cluster_limit' });
      }
      store.merge(anon, identified);
      return record(index, 'identify', ids, 'merged');
    }
    if (name === '$create_alias') {
      const alias = text(properties.alias);
      const target = text(properties.distinct_id);
      if (alias === null || target === null) {
        return record(index, 'alias', [alias ?? '', target ?? ''], 'refused', { reason: 'missing_ids' });
      }
      store.ensure(target, index);
      store.ensure(alias, index);
      const ids = [alias, target] as const;
      const pointsAt = aliasTargets.get(alias);
      if (pointsAt !== undefined && !store.together(pointsAt, target)) {
        return record(index, 'alias', ids, 'refused', {
          reason: 'alias_points_elsewhere',
          conflictsWith: pointsAt,
        });
      }
      if (store.together(alias, target)) {
        aliasTargets.set(alias, pointsAt ?? target);
        return record(index, 'alias', ids, 'unchanged');
      }
      if (store.size(alias) > 1) {
        const other = store.canonical(alias);
        return record(index, 'alias', ids, 'refused', {
          reason: 'alias_already_merged',
          conflictsWith: other,
        });
      }
      if (!withinLimit(alias, target))
        return record(index, 'alias', ids, 'refused', { reason: 'cluster_limit' });
      aliasTargets.set(alias, target);
      store.merge(alias, target);
      return record(index, 'alias', ids, 'merged');
    }
    if (name === '$merge') {
      const list = Array.isArray(properties.$distinct_ids) ? properties.$distinct_ids : [];
      const a = text(list[0]);
      const b = text(list[1]);
      if (list.length !== 2 || a === null || b === null) {
        return record(index, 'merge', [a ?? '', b ?? ''], 'refused', { reason: 'missing_ids' });
      }
      store.ensure(a, index);
      store.ensure(b, index);
      if (store.together(a, b)) return record(index, 'merge', [a, b], 'unchanged');
      if (!withinLimit(a, b)) return record(index, 'merge', [a, b], 'refused', { reason: 'cluster_limit' });
      store.merge(a, b);
      return record(index, 'merge', [a, b], 'merged');
    }
    return undefined;
  };

  messages.forEach((message, index) => {
    if (message.kind === 'group') {
      groupUpdates += 1;
      return;
    }
    if (message.kind === 'profile') {
      const target = text(message.payload.$distinct_id);
      if (target === null) return;
      store.ensure(target, index);
      const key = store.canonical(target);
      let profile = profiles.get(key);
      if (profile === undefined) {
        profile = {
          key,
          resolved: key,
          anonymous: !store.isKnown(key),
          orphaned: false,
          deleted: false,
          properties: {},
          updates: [],
        };
        profiles.set(key, profile);
      }
      profile.updates.push(index);
      applyProfileOperation(profile, message.payload);
      return;
    }
    const payload = message.payload;
    const properties = (payload.properties ?? {}) as Record<string, unknown>;
    const ids = readEventIds(mode, properties, payload.event);
    if (ids.distinctId !== '') store.ensure(ids.distinctId, index);
    if (!simplified && ids.userId !== null) store.markKnown(ids.userId, index);
    const operation = simplified
      ? simplifiedOperation(index, ids)
      : originalOperation(index, payload.event, properties);
    const resolved: ResolvedEvent = {
      index,
      ...ids,
      resolvedAtIngestion: ids.distinctId === '' ? '' : store.canonical(ids.distinctId),
      resolved: '',
      changed: false,
      retroactive: false,
    };
    if (operation !== undefined) resolved.operation = operation;
    if (typeof properties.time === 'number') resolved.time = properties.time;
    if (typeof properties.$insert_id === 'string') resolved.insertId = properties.$insert_id;
    events.push(resolved);
  });

  for (const event of events) {
    event.resolved = event.distinctId === '' ? '' : store.canonical(event.distinctId);
    event.changed = event.resolved !== event.distinctId;
    event.retroactive = event.resolved !== event.resolvedAtIngestion;
  }

  const byCanonical = new Map<string, IdentityCluster>();
  const clusters: IdentityCluster[] = [];
  const firstSeen = (state: ClusterState) =>
    state.ids.reduce((min, id) => Math.min(min, store.nodes.get(id)!.firstSeen), Number.POSITIVE_INFINITY);
  const live = store.created
    .filter((state) => state.ids.length > 0)
    .map((state) => ({ state, first: firstSeen(state) }))
    .sort((a, b) => a.first - b.first || (a.state.canonical < b.state.canonical ? -1 : 1));
  for (const { state } of live) {
    const cluster: IdentityCluster = {
      id: state.canonical,
      ids: [...state.ids],
      userIds: state.ids.filter((id) => store.isKnown(id)),
      anonymous: !state.ids.some((id) => store.isKnown(id)),
      events: [],
      profiles: [],
    };
    byCanonical.set(cluster.id, cluster);
    clusters.push(cluster);
  }
  for (const event of events)
    if (event.resolved !== '') byCanonical.get(event.resolved)?.events.push(event.index);
  for (const profile of profiles.values()) {
    profile.resolved = store.canonical(profile.key);
    profile.orphaned = profile.resolved !== profile.key;
    byCanonical.get(profile.resolved)?.profiles.push(profile.key);
  }

  return { mode, clusterLimit, events, operations, clusters, profiles: [...profiles.values()], groupUpdates };
}

/**
 * Guesses the ID Merge API a log was written for: `original` when it holds `$identify`/`$create_alias`/
 * `$merge` events or events whose `distinct_id` is their bare `$device_id`; otherwise `simplified`.
 */
export function inferIdMergeMode(messages: readonly OutgoingMessage[]): IdMergeMode {
  for (const message of messages) {
    if (message.kind !== 'event') continue;
    const properties = message.payload.properties as Record<string, unknown> | undefined;
    if (IDENTITY_EVENTS.has(message.payload.event)) return 'original';
    const device = text(properties?.$device_id);
    if (device !== null && properties?.distinct_id === device) return 'original';
  }
  return 'simplified';
}
