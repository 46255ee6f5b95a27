import { IdstitchError } from '../errors.js';
import type { HeldProfileUpdate } from '../identity/identity-store.js';
import { isUuidV4, newInsertId } from '../identity/ids.js';
import type { IdentityAction } from '../identity/reconcile.js';
import type { CurrentIdentity } from '../identity/request-identity.js';
import { normalizeUserId } from '../identity/request-identity.js';
import { MIXPANEL_LIMITS, RESERVED_EVENT_NAMES } from '../messages/limits.js';
import { IDENTITY_FIELDS, type SanitizeIssue, sanitizeProperties as sanitize } from '../messages/sanitize.js';
import type {
  EventProperties,
  GroupUpdate,
  JsonValue,
  MixpanelEvent,
  ProfileOperation,
  ProfileUpdate,
  Properties,
} from '../messages/types.js';
import {
  isValidInsertId,
  markValidated,
  validateGroupUpdate,
  validateProfileUpdate,
  validateStampedEvent,
} from '../messages/validate.js';
import type { ResolvedOptions } from '../options.js';
import { LIB_NAME, LIB_VERSION } from '../version.js';
import type { IdentityScope } from './identity-scope.js';
import type { MessagePipeline } from './pipeline.js';
import type { PeopleOperations, PropertyInput, TrackEventOptions, Tracker } from './types.js';

type ProfileOperationValue = ProfileUpdate[ProfileOperation];

/** Caller input is attacker-written: identity fields are dropped from it before the tracker stamps its own. */
function sanitizeCallerProperties(input: unknown) {
  return sanitize(input, { dropIdentityFields: true });
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/** Accepts both `op({ name: value })` and `op(name, value)`. */
function toRecord(nameOrProperties: unknown, value: unknown): unknown {
  return typeof nameOrProperties === 'string' ? { [nameOrProperties]: value } : nameOrProperties;
}

/**
 * The tracker behind `req.tracker`, `ctx.state.tracker`, Nest's `Tracker` and `forUser`/`forDevice`. One is made
 * per request (and per `forUser()` call), so it is kept light: the `people` object and the registered properties
 * are made only when first used.
 */
export class RequestTracker<Req> implements Tracker {
  private peopleOperations: PeopleOperations | undefined;
  private registered: Properties | undefined;

  constructor(
    private readonly options: ResolvedOptions<Req>,
    private readonly scope: IdentityScope,
    private readonly pipeline: MessagePipeline,
  ) {}

  get people(): PeopleOperations {
    // Arrow functions, as before it was lazy: `const { set } = tracker.people` keeps working.
    this.peopleOperations ??= {
      set: (name: unknown, value?: unknown) => this.guard(() => this.profile('$set', toRecord(name, value))),
      setOnce: (name: unknown, value?: unknown) =>
        this.guard(() => this.profile('$set_once', toRecord(name, value))),
      increment: (name: unknown, by: unknown = 1) =>
        this.guard(() => this.profile('$add', toRecord(name, by))),
      append: (name: unknown, value?: unknown) =>
        this.guard(() => this.profile('$append', toRecord(name, value))),
      union: (name: unknown, values?: unknown) =>
        this.guard(() => this.profile('$union', toRecord(name, values))),
      remove: (name: unknown, value?: unknown) =>
        this.guard(() => this.profile('$remove', toRecord(name, value))),
      unset: (names: string | readonly string[]) =>
        this.guard(() => this.profile('$unset', typeof names === 'string' ? [names] : names)),
      deleteProfile: () => this.guard(() => this.profile('$delete', '')),
    } as PeopleOperations;
    return this.peopleOperations;
  }

  get optedOut(): boolean {
    return this.scope.optedOut;
  }

  get identity(): CurrentIdentity & { distinctId: string | undefined } {
    const identity = this.resolve();
    return { ...identity, distinctId: this.distinctId(identity) };
  }

  track(event: string, properties?: PropertyInput, options?: TrackEventOptions): void {
    // The guard inlined: no closure per event on the hot path.
    try {
      this.trackEvent(event, properties, options);
    } catch (error) {
      this.unexpected(error);
    }
  }

  private trackEvent(
    event: string,
    properties: PropertyInput | undefined,
    options: TrackEventOptions | undefined,
  ) {
    if (this.scope.optedOut) return this.pipeline.drop('consent');
    if (typeof event !== 'string' || event.trim() === '' || event.length > MIXPANEL_LIMITS.maxKeyLength) {
      return this.invalid(
        'invalid_event_name',
        `event name must be a non-empty string of at most ${MIXPANEL_LIMITS.maxKeyLength} characters`,
      );
    }
    if (RESERVED_EVENT_NAMES.has(event)) {
      return this.invalid('invalid_event_name', `${event} is reserved: use identify(), alias() or merge()`);
    }
    const sanitized = sanitizeCallerProperties(properties);
    this.reportIssues(sanitized.issues, { event });
    this.emitEvent(
      event,
      sanitized.properties,
      this.resolve(),
      sanitized.estimatedBytes,
      undefined,
      options?.insertId === undefined ? undefined : this.callerInsertId(options.insertId),
    );
  }

  identify(userId: string | number, traits?: PropertyInput): void {
    this.guard(() => {
      if (this.scope.optedOut) return this.pipeline.drop('consent');
      const normalized = normalizeUserId(userId);
      if (normalized.userId === undefined) {
        return this.invalid('invalid_id', `identify() needs a user ID: ${normalized.problem ?? 'got none'}`);
      }
      this.perform(this.scope.identify(normalized.userId));
      if (traits === undefined) return;
      const sanitized = sanitizeCallerProperties(traits);
      this.reportIssues(sanitized.issues, { method: 'identify' });
      const { company, ...userTraits } = sanitized.properties;
      if (company !== null && typeof company === 'object' && !Array.isArray(company)) {
        const { id, ...companyTraits } = company;
        if (typeof id === 'string' || typeof id === 'number') this.group('company', id, companyTraits);
        else
          this.invalid('invalid_property', 'traits.company needs an id (string or number) to become a group');
      }
      if (Object.keys(userTraits).length > 0) this.profile('$set', userTraits);
    });
  }

  alias(alias: string): void {
    this.guard(() => {
      if (this.scope.optedOut) return this.pipeline.drop('consent');
      if (this.options.idMerge !== 'original') {
        return this.invalid(
          'unsupported_in_mode',
          'alias() needs Original ID Merge; Simplified projects ignore $create_alias. Use identify().',
        );
      }
      const normalized = normalizeUserId(alias);
      if (normalized.userId === undefined)
        return this.invalid('invalid_id', 'alias() needs a non-empty, non-placeholder ID');
      const identity = this.resolve();
      const current = this.distinctId(identity) as string;
      this.emitEvent('$create_alias', { alias: normalized.userId }, identity, 0, current);
    });
  }

  merge(distinctIdA: string, distinctIdB: string): void {
    this.guard(() => {
      if (this.scope.optedOut) return this.pipeline.drop('consent');
      if (this.options.idMerge !== 'original') {
        return this.invalid(
          'unsupported_in_mode',
          'merge() needs Original ID Merge; Simplified projects cannot merge two user IDs.',
        );
      }
      const a = normalizeUserId(distinctIdA).userId;
      const b = normalizeUserId(distinctIdB).userId;
      if (a === undefined || b === undefined || a === b) {
        return this.invalid('invalid_id', 'merge() needs two different, non-placeholder IDs');
      }
      this.emitEvent('$merge', { $distinct_ids: [a, b] }, this.resolve(), 0, a);
    });
  }

  reset(): void {
    this.guard(() => {
      if (this.scope.optedOut) return;
      this.perform(this.scope.reset());
    });
  }

  register(properties: PropertyInput): void {
    this.guard(() => {
      const sanitized = sanitizeCallerProperties(properties);
      this.reportIssues(sanitized.issues, { method: 'register' });
      this.registered = Object.assign(this.registered ?? {}, sanitized.properties);
    });
  }

  trackCharge(amount: number, properties?: PropertyInput): void {
    this.guard(() => {
      if (typeof amount !== 'number' || !Number.isFinite(amount)) {
        return this.invalid('invalid_property', 'trackCharge() needs a finite number amount');
      }
      const sanitized = sanitizeCallerProperties(properties);
      this.reportIssues(sanitized.issues, { method: 'trackCharge' });
      this.profile('$append', {
        $transactions: { ...sanitized.properties, $amount: amount, $time: new Date().toISOString() },
      });
    });
  }

  group(key: string, id: string | number, traits?: PropertyInput): void {
    this.guard(() => {
      if (this.scope.optedOut) return this.pipeline.drop('consent');
      const groupId = normalizeUserId(id).userId;
      if (
        typeof key !== 'string' ||
        key.trim() === '' ||
        key.length > MIXPANEL_LIMITS.maxKeyLength ||
        key.startsWith('$')
      ) {
        return this.invalid(
          'invalid_property',
          'group() needs a group key such as "company" (not starting with $)',
        );
      }
      if (groupId === undefined)
        return this.invalid('invalid_id', 'group() needs a non-empty, non-placeholder group ID');
      this.registered ??= {};
      this.registered[key] = groupId;
      this.profile('$union', { [key]: [groupId] });
      if (traits === undefined) return;
      const sanitized = sanitizeCallerProperties(traits);
      this.reportIssues(sanitized.issues, { method: 'group' });
      const update: GroupUpdate = { $group_key: key, $group_id: groupId, $set: sanitized.properties };
      const problem = validateGroupUpdate(update);
      if (problem) return this.invalid('invalid_message', `group update rejected: ${problem.message}`);
      markValidated(update);
      this.pipeline.write({ kind: 'group', payload: update });
    });
  }

  /** Emits what the identity transitions require; used by the request scope when it settles. */
  perform(actions: readonly IdentityAction[]): void {
    for (const action of actions) {
      if (action.type !== 'identify') continue;
      this.emitIdentify(action.userId, action.deviceId);
      if (action.carryHeldUpdates === false) this.discardHeldUpdates(action.deviceId);
      else this.applyHeldUpdates(action.deviceId, action.userId);
    }
  }

  private resolve(): CurrentIdentity {
    const { identity, actions } = this.scope.current();
    if (actions.length > 0) this.perform(actions);
    return identity;
  }

  private distinctId(identity: CurrentIdentity): string | undefined {
    if (identity.userId !== undefined) return identity.userId;
    if (identity.deviceId === undefined) return undefined;
    return this.options.idMerge === 'simplified' ? `$device:${identity.deviceId}` : identity.deviceId;
  }

  private emitIdentify(userId: string, deviceId: string): void {
    const identity = { userId, deviceId };
    if (this.options.idMerge === 'simplified') {
      this.emitEvent(this.options.identifyEventName, {}, identity, 0);
      return;
    }
    if (!isUuidV4(deviceId)) {
      this.invalid(
        'invalid_id',
        '$identify skipped: Original ID Merge merges only a UUIDv4 $anon_id, and this device ID is not one',
      );
      return;
    }
    this.emitEvent('$identify', { $anon_id: deviceId, $identified_id: userId }, identity, 0);
  }

  /** The caller's own `$insert_id` (for their dedupe), when it follows Mixpanel's rules; else a fresh one. */
  private callerInsertId(insertId: unknown): string | undefined {
    if (isValidInsertId(insertId)) return insertId;
    this.invalid(
      'invalid_property',
      'track() options.insertId must be 1-36 letters, digits or "-"; a fresh $insert_id was used',
      false,
    );
    return undefined;
  }

  /**
   * Stamps and hands on one event. `properties` are either sanitised caller properties (identity fields already
   * dropped) or the engine's own (`$anon_id`, `alias`...); identity comes only from `identity`, `distinctId` and
   * `insertId` (a caller's, already checked by {@link callerInsertId}; default a fresh one).
   */
  private emitEvent(
    name: string,
    properties: Properties,
    identity: CurrentIdentity,
    estimatedBytes: number,
    distinctId: string | undefined = this.distinctId(identity),
    insertId: string | undefined = undefined,
  ): void {
    if (this.scope.bot) return this.pipeline.drop('bot');
    if (distinctId === undefined) return this.invalid('invalid_id', 'no identity to attribute the event to');
    let own = properties;
    let time = properties.time;
    // A caller's `time` is stamped below, in the stamp's place; copying without it happens only when there is one.
    if (time !== undefined) ({ time, ...own } = properties);
    // Spread in a literal, not Object.assign: Object.assign adds properties the way `o[key] = v` does, and past 12
    // of them outside the object V8 switches it to dictionary mode, where JSON.stringify takes its slow path (a
    // request's facts plus ten properties did: 9 µs an event for build and stringify, 5-6 µs spread). Same keys,
    // same order; spread defines properties where Object.assign set them, so no setter or `__proto__` can apply.
    const stamped = {
      mp_lib: LIB_NAME,
      $lib_version: LIB_VERSION,
      ...this.options.superProperties,
      ...this.scope.requestFacts(),
      ...this.registered,
      ...own,
    } as unknown as EventProperties;
    stamped.distinct_id = distinctId;
    stamped.time = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : Date.now();
    stamped.$insert_id = insertId ?? newInsertId();
    if (identity.deviceId !== undefined) stamped.$device_id = identity.deviceId;
    if (identity.userId !== undefined) stamped.$user_id = identity.userId;
    const ip = this.scope.clientIp();
    if (ip !== undefined) stamped.ip = ip;
    const event: MixpanelEvent = { event: name, properties: stamped };
    const problem = validateStampedEvent(event);
    if (problem)
      return this.invalid(
        'invalid_message',
        `event "${name}" rejected: ${problem.field}: ${problem.message}`,
      );
    if (
      estimatedBytes > MIXPANEL_LIMITS.maxMessageBytes / 2 &&
      JSON.stringify(event).length > MIXPANEL_LIMITS.maxMessageBytes
    ) {
      return this.invalid('message_too_large', `event "${name}" exceeds Mixpanel's 1 MB limit`);
    }
    markValidated(event);
    this.pipeline.write({ kind: 'event', payload: event });
  }

  private profile(operation: ProfileOperation, input: unknown): void {
    if (this.scope.optedOut) return this.pipeline.drop('consent');
    const value = this.profileValue(operation, input);
    if (value === undefined) return;
    const identity = this.resolve();
    if (identity.userId === undefined && this.options.anonymousProfileUpdates === 'hold') {
      if (identity.deviceId === undefined)
        return this.invalid('invalid_id', 'no identity for the profile update');
      return this.hold(identity.deviceId, { [operation]: value, heldAt: Date.now() } as HeldProfileUpdate);
    }
    const update = { $distinct_id: this.distinctId(identity), [operation]: value } as ProfileUpdate;
    if (operation === '$delete') update.$ignore_alias = true;
    this.emitProfile(update);
  }

  /** Sanitises an operation's value into the shape `/engage` wants; undefined (reported) when unusable. */
  private profileValue(operation: ProfileOperation, input: unknown): ProfileOperationValue | undefined {
    if (operation === '$delete') return '';
    if (operation === '$unset') {
      const names = Array.isArray(input)
        ? input.filter(
            (name): name is string => typeof name === 'string' && name !== '' && !IDENTITY_FIELDS.has(name),
          )
        : [];
      if (names.length === 0) return void this.invalid('invalid_property', 'unset() needs property names');
      return names;
    }
    const sanitized = sanitizeCallerProperties(input);
    this.reportIssues(sanitized.issues, { operation });
    const properties = sanitized.properties;
    if (operation === '$add') {
      for (const [name, by] of Object.entries(properties)) {
        if (typeof by !== 'number') {
          delete properties[name];
          this.invalid('invalid_property', `increment() needs numbers; dropped "${name}"`, false);
        }
      }
    }
    if (operation === '$union') {
      for (const [name, values] of Object.entries(properties)) {
        if (!Array.isArray(values)) properties[name] = [values as JsonValue];
      }
    }
    if (Object.keys(properties).length === 0)
      return void this.invalid('invalid_property', `${operation} needs at least one property`);
    return properties as ProfileOperationValue;
  }

  private emitProfile(update: ProfileUpdate): void {
    const ip = this.scope.clientIp();
    if (ip !== undefined) update.$ip = ip;
    const problem = validateProfileUpdate(update);
    if (problem)
      return this.invalid('invalid_message', `profile update rejected: ${problem.field}: ${problem.message}`);
    markValidated(update);
    this.pipeline.write({ kind: 'profile', payload: update });
  }

  private hold(deviceId: string, update: HeldProfileUpdate): void {
    const held = this.options.identityStore.hold(deviceId, update);
    if (isPromise(held)) this.pipeline.defer(held, () => {}, 'could not hold an anonymous profile update');
  }

  private applyHeldUpdates(deviceId: string, userId: string): void {
    const apply = (updates: HeldProfileUpdate[]) => {
      for (const { heldAt: _heldAt, ...update } of updates)
        this.emitProfile({ ...update, $distinct_id: userId } as ProfileUpdate);
    };
    const taken = this.options.identityStore.take(deviceId);
    if (isPromise(taken)) this.pipeline.defer(taken, apply, 'could not apply held anonymous profile updates');
    else apply(taken);
  }

  /** Held updates of a device nothing vouches for are never applied to a user: they are dropped, reported. */
  private discardHeldUpdates(deviceId: string): void {
    const discard = (updates: HeldProfileUpdate[]) => {
      if (updates.length === 0) return;
      this.options.report(
        new IdstitchError(
          'held_updates_dropped',
          `dropped ${updates.length} held anonymous profile update(s): the device came from an unauthenticated source (deviceIdHeader or the mixpanel-browser cookie)`,
          { details: { count: updates.length, reason: 'unauthenticated device' } },
        ),
      );
    };
    const taken = this.options.identityStore.take(deviceId);
    if (isPromise(taken))
      this.pipeline.defer(taken, discard, 'could not discard held anonymous profile updates');
    else discard(taken);
  }

  private reportIssues(issues: SanitizeIssue[], context: Record<string, unknown>): void {
    if (issues.length === 0) return;
    const summary = issues
      .slice(0, 3)
      .map((issue) => `${issue.path}: ${issue.reason}`)
      .join('; ');
    this.options.report(
      new IdstitchError('invalid_property', `repaired or dropped properties (${summary})`, {
        details: { ...context, issues },
      }),
    );
  }

  /** Reports bad input and, when it cost a message, counts the drop so counters still balance. */
  private invalid(code: IdstitchError['code'], message: string, countsAsDrop = true): void {
    const error = new IdstitchError(code, message);
    if (countsAsDrop) this.pipeline.drop('invalid', error);
    else this.options.report(error);
  }

  /** Tracking must never break the request it observes. */
  private guard(work: () => void): void {
    try {
      work();
    } catch (error) {
      this.unexpected(error);
    }
  }

  private unexpected(error: unknown): void {
    this.options.report(
      new IdstitchError('invalid_message', 'unexpected failure while tracking; the call was dropped', {
        cause: error,
      }),
    );
  }
}
