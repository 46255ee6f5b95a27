import type { CookieAttributes, CookieWrite } from '../cookie/cookie-header.js';
import { DeviceCookieCodec, type DeviceCookieRejection } from '../cookie/device-cookie.js';
import {
  browserDeviceId,
  browserInitialReferrer,
  browserUserId,
  type MixpanelBrowserState,
  mixpanelBrowserCookieDomain,
  mixpanelBrowserCookieName,
  nextMixpanelBrowserState,
  parseMixpanelBrowserCookie,
} from '../cookie/mixpanel-browser-cookie.js';
import { BrowserFacts } from '../enrich/request-facts.js';
import { UserAgentCache } from '../enrich/user-agent.js';
import { IdstitchError } from '../errors.js';
import { isPlaceholderId } from '../messages/validate.js';
import type { ResolvedOptions } from '../options.js';
import type { RequestPort } from '../request-port.js';
import { chooseDevice } from './choose-device.js';
import { isAcceptableDeviceId, newDeviceId } from './ids.js';
import { type IdentityAction, type IdentityState, reconcileIdentity } from './reconcile.js';

/** Who the visitor is right now. */
export interface CurrentIdentity {
  deviceId: string | undefined;
  userId: string | undefined;
}

const MAX_USER_ID_LENGTH = 255;
const OPT_OUT_VALUES = new Set(['1', 'true', 'yes']);
const RESOLVER_FAILED = Symbol('resolver failed');

/** Everything the identity scope needs that is shared across requests. */
export interface IdentityContext<Req> {
  options: ResolvedOptions<Req>;
  codec: DeviceCookieCodec;
  /** Parsed User-Agents, shared by the engine's requests. */
  userAgents: UserAgentCache;
}

export function createIdentityContext<Req>(options: ResolvedOptions<Req>): IdentityContext<Req> {
  return {
    options,
    codec: new DeviceCookieCodec(
      options.cookie.secrets,
      options.cookie.tagKeys,
      options.cookie.verifiedCache,
    ),
    userAgents: new UserAgentCache(),
  };
}

/**
 * Turns what the resolver returned into a user ID, or undefined for anonymous, with the reason when the value
 * cannot be one. Numbers and BigInts are coerced to their decimal text (an unsafe integer is refused: it has
 * already lost digits). Refused, with a reason: objects (`req.user` instead of `req.user.id` would otherwise send
 * "[object Object]"), text with lone surrogates (repairing it could make two users one), and anything Mixpanel
 * refuses as an ID: empty, over 255 characters, a placeholder such as `0`, `-1`, `null` or `undefined`, or a
 * `$device:` ID.
 */
export function normalizeUserId(raw: unknown): { userId: string | undefined; problem?: string } {
  if (raw === undefined || raw === null || raw === false || raw === '') return { userId: undefined };
  let text: string;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { userId: undefined, problem: `the user ID is ${raw}, not an ID` };
    if (Number.isInteger(raw) && !Number.isSafeInteger(raw)) {
      return {
        userId: undefined,
        problem: `the user ID ${raw} is beyond Number.MAX_SAFE_INTEGER and has lost digits; pass it as a string or BigInt`,
      };
    }
    text = String(raw);
  } else if (typeof raw === 'bigint') text = raw.toString();
  else if (typeof raw === 'string') text = raw;
  else {
    return {
      userId: undefined,
      problem: `the user ID is a ${typeof raw}; return the user's ID (a string or number)`,
    };
  }
  const userId = text.trim();
  if (!userId.isWellFormed()) {
    return { userId: undefined, problem: 'the user ID contains lone surrogates (malformed UTF-16 text)' };
  }
  if (userId === '' || userId.length > MAX_USER_ID_LENGTH) {
    return { userId: undefined, problem: `the user ID must be 1-${MAX_USER_ID_LENGTH} characters` };
  }
  if (isPlaceholderId(userId)) {
    return {
      userId: undefined,
      problem: `the user ID "${userId}" is a placeholder Mixpanel refuses as an ID`,
    };
  }
  if (userId.startsWith('$device:')) {
    return { userId: undefined, problem: 'the user ID is a $device: ID, which names a device, not a user' };
  }
  return { userId };
}

/** One request's view of identity: reads the cookie once, reconciles lazily, writes the cookie once. */
export class RequestIdentity<Req> {
  readonly optedOut: boolean;
  private state: IdentityState | undefined;
  /** State as it arrived (after source precedence), to decide whether the cookie must be written. */
  private readonly arrived: IdentityState | undefined;
  private cookieNeedsWrite: boolean;
  private browserState: MixpanelBrowserState | undefined;
  /** The device was minted or rotated in this request: the browser SDK's old state must not survive. */
  private deviceRenewed = false;
  private readonly browserDevice: string | undefined;
  /** The user mixpanel-browser was told about (client-side `identify()` or our earlier write). */
  private readonly browserUser: string | undefined;
  private facts: BrowserFacts<Req> | undefined;
  private readonly fromHeader: boolean;
  /** The device cookie's name on this request: `__Host-<name>` when it is written Secure and may be prefixed. */
  private readonly cookieName: string;
  /** A value under the unprefixed name arrived while the prefixed one is in use: moved, then expired. */
  private legacyCarried = false;
  /** Several genuine values of different devices, chosen between once the signed-in user is known. */
  private candidates: IdentityState[] | undefined;
  /** A device that came from an unauthenticated source (header, mixpanel-browser cookie). */
  private untrustedDeviceId: string | undefined;
  private explicitUserId: string | undefined;
  /** After an explicit reset, the session's user is treated as anonymous until it changes. */
  private suppressedUserId: string | undefined;
  private lastResolved: string | undefined | null = null;
  private pending: IdentityAction[] = [];
  private settled = false;

  constructor(
    private readonly context: IdentityContext<Req>,
    private readonly port: RequestPort<Req>,
  ) {
    const { options } = context;
    const secure = options.cookie.secure === 'auto' ? port.secure : options.cookie.secure;
    this.cookieName = secure && options.cookie.hostName ? options.cookie.hostName : options.cookie.name;
    this.optedOut = this.readOptOut();
    const cookie = this.optedOut ? undefined : this.readDeviceCookie();
    this.cookieNeedsWrite = this.optedOut
      ? port.cookies(this.cookieName).length > 0 ||
        (this.cookieName !== options.cookie.name && port.cookies(options.cookie.name).length > 0)
      : (cookie?.stale ?? true);
    let state: IdentityState | undefined;
    if (cookie !== undefined && cookie.candidates.length === 1) state = cookie.candidates[0];
    else if (cookie !== undefined) this.candidates = cookie.candidates;
    if (!this.optedOut && options.mixpanelBrowserCookie) {
      const name = mixpanelBrowserCookieName(options.mixpanelBrowserCookie.token);
      // The first value, as mixpanel-browser itself reads `document.cookie`.
      this.browserState = parseMixpanelBrowserCookie(port.cookies(name)[0]);
      this.browserDevice = browserDeviceId(this.browserState);
      this.browserUser = this.browserDevice === undefined ? undefined : browserUserId(this.browserState);
    }
    const headerDevice = options.deviceIdHeader ? port.header(options.deviceIdHeader) : undefined;
    this.fromHeader = !this.optedOut && isAcceptableDeviceId(headerDevice);
    const sourced = this.fromHeader ? headerDevice : this.browserDevice;
    const vouched = this.candidates?.filter((candidate) => candidate.deviceId === sourced);
    if (vouched !== undefined && vouched.length > 0) this.candidates = vouched;
    else if (sourced !== undefined && sourced !== state?.deviceId) {
      // The link we remember belongs to another device; it says nothing about this one. Nothing vouches for
      // the value either (anyone can send it), so it never carries held anonymous updates onto a user.
      state = { deviceId: sourced as string, userTag: undefined };
      this.candidates = undefined;
      this.untrustedDeviceId = sourced;
      this.cookieNeedsWrite = true;
    }
    this.state = state;
    this.arrived = state;
  }

  /** Current identity, reconciling with the app's auth first. Returns the actions that reconciling produced. */
  current(): { identity: CurrentIdentity; actions: IdentityAction[] } {
    if (this.optedOut) return { identity: { deviceId: undefined, userId: undefined }, actions: [] };
    const resolved = this.explicitUserId ?? this.resolveUser();
    if (resolved === RESOLVER_FAILED) {
      // We cannot tell whether the user changed: keep the state as it is rather than guess a logout.
      if (this.state === undefined) this.apply(undefined);
      const actions = this.pending;
      this.pending = [];
      return { identity: { deviceId: this.state?.deviceId, userId: undefined }, actions };
    }
    const userId = resolved;
    if (userId !== this.lastResolved || this.state === undefined) {
      this.lastResolved = userId;
      this.apply(userId);
    }
    const actions = this.pending;
    this.pending = [];
    return { identity: { deviceId: this.state?.deviceId, userId }, actions };
  }

  /** The app said who the user is (signup before the session exists, a background identify). */
  identify(userId: string): IdentityAction[] {
    this.explicitUserId = userId;
    this.suppressedUserId = undefined;
    return this.current().actions;
  }

  /** Forget the device: a fresh device ID, anonymous until the signed-in user changes. */
  reset(): IdentityAction[] {
    if (this.optedOut) return [];
    const before = this.current();
    const previousDeviceId = this.state?.deviceId ?? newDeviceId();
    const deviceId = newDeviceId();
    this.state = { deviceId, userTag: undefined };
    this.explicitUserId = undefined;
    this.suppressedUserId = before.identity.userId;
    this.lastResolved = undefined;
    this.markDeviceChanged();
    return [...before.actions, { type: 'reset', previousDeviceId, deviceId, reason: 'explicit' }];
  }

  /**
   * Final reconcile and the cookies to write, once, just before the response headers go out. Later calls
   * return nothing: at most one Set-Cookie per name per response.
   */
  settle(): { actions: IdentityAction[]; cookies: CookieWrite[] } {
    if (this.settled) return { actions: [], cookies: [] };
    const { actions } = this.current();
    this.settled = true;
    return { actions, cookies: this.cookieWrites() };
  }

  /**
   * Request facts as the options allow: `$pathname`, `$user_agent`, and mixpanel-browser's default
   * properties (`$browser`, `$os`, `$current_url`, `$referrer`, `$initial_referrer`, UTM keys…).
   */
  requestFacts(): Record<string, string | number | null> {
    return this.browserFacts().properties();
  }

  /** True when the User-Agent is a crawler mixpanel-browser refuses to track and the options drop them. */
  get bot(): boolean {
    return this.browserFacts().bot;
  }

  private browserFacts(): BrowserFacts<Req> {
    this.facts ??= new BrowserFacts(this.port, this.context.options, this.context.userAgents, {
      storedInitialReferrer: this.context.options.mixpanelBrowserCookie
        ? browserInitialReferrer(this.browserState)
        : undefined,
      ownCookie: this.context.options.mixpanelBrowserCookie === undefined,
    });
    return this.facts;
  }

  /** The client IP, only when the app opted in to geolocation. */
  clientIp(): string | undefined {
    return this.context.options.geolocate ? this.port.ip : undefined;
  }

  private apply(userId: string | undefined): void {
    const { codec, options } = this.context;
    if (this.candidates !== undefined) {
      const { state, ambiguous } = chooseDevice(this.candidates, userId, (tag, id, device) =>
        codec.isTagOf(tag, id, device),
      );
      this.candidates = undefined;
      this.state = state;
      if (ambiguous) {
        options.report(
          new IdstitchError(
            'duplicate_cookie',
            'several genuine device cookies of different devices and none is the signed-in user’s: a fresh device was issued',
          ),
        );
      }
    }
    let before = this.state;
    if (
      userId !== undefined &&
      this.browserUser !== undefined &&
      this.browserUser !== userId &&
      before !== undefined &&
      before.deviceId === this.browserDevice
    ) {
      // mixpanel-browser linked this device to another user: never link it to this one as well.
      before = { deviceId: before.deviceId, userTag: codec.tagUser(this.browserUser, before.deviceId) };
    }
    const result = reconcileIdentity({
      previous: before,
      userId,
      resetOnLogout: options.resetOnLogout,
      isLinkedUser: (tag, id) => codec.isTagOf(tag, id, (before as IdentityState).deviceId),
      tagUser: (id, deviceId) => codec.tagUser(id, deviceId),
      newDeviceId,
    });
    this.state = result.state;
    for (const action of result.actions) {
      if (action.type === 'identify' && action.deviceId === this.untrustedDeviceId)
        action.carryHeldUpdates = false;
    }
    this.pending.push(...result.actions);
    if (before?.deviceId !== result.state.deviceId) this.markDeviceChanged();
  }

  private markDeviceChanged(): void {
    this.deviceRenewed = true;
    this.facts?.deviceRenewed();
  }

  private resolveUser(): string | undefined | typeof RESOLVER_FAILED {
    let raw: unknown;
    try {
      raw = this.context.options.resolveUserId(this.port.request);
    } catch (error) {
      this.context.options.report(
        new IdstitchError('resolver_failed', 'resolveUserId threw; keeping the previous identity', {
          cause: error,
        }),
      );
      // A failing resolver must not look like a logout and rotate the device.
      return this.lastResolved === null ? RESOLVER_FAILED : this.lastResolved;
    }
    const { userId, problem } = normalizeUserId(raw);
    if (problem) {
      // An ID that cannot be sent is not a logout either: keep the identity as it was, and report why.
      this.context.options.report(
        new IdstitchError('invalid_id', `resolveUserId: ${problem}; the request is tracked as before`, {
          details: { type: typeof raw },
        }),
      );
      return this.lastResolved === null ? RESOLVER_FAILED : this.lastResolved;
    }
    if (userId !== undefined && userId === this.suppressedUserId) return undefined;
    if (userId !== this.suppressedUserId) this.suppressedUserId = undefined;
    return userId;
  }

  private readOptOut(): boolean {
    const { consent } = this.context.options;
    if (consent.globalPrivacyControl && this.port.header('sec-gpc')?.trim() === '1') return true;
    if (consent.optOutCookie) {
      const value = this.port.cookies(consent.optOutCookie)[0];
      if (value !== undefined && OPT_OUT_VALUES.has(value.trim().toLowerCase())) return true;
    }
    if (consent.isOptedOut) {
      try {
        return consent.isOptedOut(this.port.request) === true;
      } catch (error) {
        // When consent cannot be established, do not track.
        this.context.options.report(
          new IdstitchError('hook_failed', 'consent.isOptedOut threw; treating the visitor as opted out', {
            cause: error,
          }),
        );
        return true;
      }
    }
    return false;
  }

  /** Every genuine value of the device cookie, for {@link chooseDevice}; undefined when none verifies. */
  private readDeviceCookie(): { candidates: IdentityState[]; stale: boolean } | undefined {
    const { codec, options } = this.context;
    let name = this.cookieName;
    let values = this.port.cookies(name);
    let rejectedByFramework = this.port.rejectedCookies?.(name) ?? 0;
    if (values.length + rejectedByFramework === 0 && name !== options.cookie.name) {
      // Moving to the __Host- name: visitors from before keep their device.
      name = options.cookie.name;
      values = this.port.cookies(name);
      rejectedByFramework = this.port.rejectedCookies?.(name) ?? 0;
      this.legacyCarried = values.length + rejectedByFramework > 0;
    }
    const carried = values.length + rejectedByFramework;
    if (carried === 0) return undefined;
    if (carried > 1) {
      options.report(
        new IdstitchError(
          'duplicate_cookie',
          `request carried ${carried} "${name}" cookies; choosing between the genuine ones`,
          { details: { count: carried } },
        ),
      );
    }
    let rejection: DeviceCookieRejection | 'framework signature' | undefined =
      rejectedByFramework > 0 ? 'framework signature' : undefined;
    const candidates: IdentityState[] = [];
    let stale = carried > 1 || this.legacyCarried || this.port.isCookieStale?.(name) === true;
    for (const value of values) {
      const decoded = codec.decode(value);
      if (!decoded.ok) {
        rejection ??= decoded.reason;
        continue;
      }
      stale ||= decoded.stale;
      const { deviceId, userTag } = decoded.state;
      if (!candidates.some((known) => known.deviceId === deviceId && known.userTag === userTag)) {
        candidates.push(decoded.state);
      }
    }
    if (candidates.length > 0) return { candidates, stale };
    options.report(
      new IdstitchError(
        rejection === 'malformed' ? 'invalid_cookie' : 'tampered_cookie',
        `device cookie rejected (${rejection}); a new device ID was issued`,
        { details: { reason: rejection } },
      ),
    );
    return undefined;
  }

  private cookieWrites(): CookieWrite[] {
    const { options, codec } = this.context;
    const attributes: CookieAttributes = {
      path: options.cookie.path,
      domain: options.cookie.domain,
      maxAge: options.cookie.maxAge,
      httpOnly: options.cookie.httpOnly,
      secure: options.cookie.secure === 'auto' ? this.port.secure : options.cookie.secure,
      sameSite: options.cookie.sameSite,
    };
    const writes: CookieWrite[] = [];
    if (
      this.cookieName !== options.cookie.name &&
      (this.legacyCarried || (this.optedOut && this.port.cookies(options.cookie.name).length > 0))
    ) {
      writes.push({ name: options.cookie.name, value: '', attributes: { ...attributes, maxAge: 0 } });
    }
    if (this.optedOut) {
      if (!this.cookieNeedsWrite) return [];
      if (this.port.cookies(this.cookieName).length > 0) {
        // Before the legacy expiry, as it always was.
        writes.unshift({ name: this.cookieName, value: '', attributes: { ...attributes, maxAge: 0 } });
      }
      return writes;
    }
    const state = this.state;
    if (state === undefined) return writes;
    if (
      this.cookieNeedsWrite ||
      state.deviceId !== this.arrived?.deviceId ||
      state.userTag !== this.arrived?.userTag
    ) {
      writes.push({ name: this.cookieName, value: codec.encode(state), attributes });
    }
    const browser = options.mixpanelBrowserCookie;
    if (browser?.write && !this.fromHeader) {
      const next = nextMixpanelBrowserState(this.browserState, {
        deviceId: state.deviceId,
        userId: typeof this.lastResolved === 'string' ? this.lastResolved : undefined,
        fresh: this.deviceRenewed,
        initialReferrer: this.browserFacts().initialReferrerProperties(),
      });
      if (next !== undefined) {
        const host = this.port.host ?? this.port.header('host');
        writes.push({
          name: mixpanelBrowserCookieName(browser.token),
          value: JSON.stringify(next),
          attributes: {
            ...attributes,
            // As the SDK writes it: readable by page scripts, SameSite left to the browser's Lax default.
            domain:
              browser.domain ??
              (browser.crossSubdomainCookie ? mixpanelBrowserCookieDomain(host) : undefined),
            httpOnly: false,
            sameSite: 'lax',
          },
        });
      }
    }
    const ownReferrer = this.browserFacts().initialReferrerCookie(attributes);
    if (ownReferrer) writes.push(ownReferrer);
    return writes;
  }
}
