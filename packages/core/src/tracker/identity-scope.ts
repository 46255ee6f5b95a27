import type { IdentityAction } from '../identity/reconcile.js';
import type { CurrentIdentity } from '../identity/request-identity.js';

/** Where a tracker gets identity from: a request (cookie + auth) or a fixed identity for background work. */
export interface IdentityScope {
  readonly optedOut: boolean;
  current(): { identity: CurrentIdentity; actions: IdentityAction[] };
  identify(userId: string): IdentityAction[];
  reset(): IdentityAction[];
  requestFacts(): Record<string, string | number | null>;
  clientIp(): string | undefined;
  /** True when the request's User-Agent is a crawler whose events are dropped. */
  readonly bot: boolean;
}

/** Outside a request there are no request facts; one shared, frozen empty object. */
const NO_FACTS: Record<string, string | number | null> = Object.freeze({});

/**
 * A fixed identity for work outside a request (a queue job, a cron task): `forUser(id)` or `forDevice(id)`.
 * `identify` on a device links it like a login would; `reset` is not meaningful and is refused by the tracker.
 */
export class FixedIdentity implements IdentityScope {
  readonly optedOut = false;
  readonly bot = false;
  private pending: IdentityAction[] = [];

  constructor(private readonly fixed: CurrentIdentity) {}

  current(): { identity: CurrentIdentity; actions: IdentityAction[] } {
    const actions = this.pending;
    this.pending = [];
    return { identity: { ...this.fixed }, actions };
  }

  identify(userId: string): IdentityAction[] {
    if (this.fixed.userId === userId) return [];
    const deviceId = this.fixed.deviceId;
    this.fixed.userId = userId;
    return deviceId === undefined ? [] : [{ type: 'identify', userId, deviceId }];
  }

  reset(): IdentityAction[] {
    return [];
  }

  requestFacts(): Record<string, string | number | null> {
    return NO_FACTS;
  }

  clientIp(): string | undefined {
    return undefined;
  }
}
