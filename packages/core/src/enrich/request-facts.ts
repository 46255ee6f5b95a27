/**
 * One request's facts for its events: `$pathname`, `$user_agent` and mixpanel-browser's default properties,
 * read through the request port and computed once per request (again only if the device is renewed), plus
 * the first-touch referrer kept per device.
 *
 * Where first touch is kept: with the mixpanel-browser cookie interop on, in the SDK's own cookie (the SDK
 * registers `$initial_referrer` there itself, so both sides send the same value); otherwise in a small
 * companion cookie `<device cookie name>_ref` (at most 255 characters of URL), written on the device's first
 * page load, never on fetch/XHR requests whose Referer is our own page. The device cookie does not grow.
 */
import type { CookieAttributes, CookieWrite } from '../cookie/cookie-header.js';
import type { ResolvedOptions } from '../options.js';
import type { RequestPort } from '../request-port.js';
import {
  browserProperties,
  DIRECT,
  initialReferrerProperties,
  type PageContext,
  pageContext,
  propertyUrl,
} from './browser-properties.js';
import { referringDomain } from './url.js';
import type { UserAgentCache, UserAgentInfo } from './user-agent.js';

const HOST = /^[A-Za-z0-9.\-_]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;
const MAX_STORED_REFERRER = 2048;
// Control characters never belong in a stored referrer.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Where the first-touch referrer was found for this request. */
export interface StoredFirstTouch {
  /** `$initial_referrer` from mixpanel-browser's cookie (interop on). */
  storedInitialReferrer: string | undefined;
  /** Keep first touch in the companion cookie (interop off). */
  ownCookie: boolean;
}

/** The companion cookie's name. */
export function initialReferrerCookieName(deviceCookieName: string): string {
  return `${deviceCookieName}_ref`;
}

export class BrowserFacts<Req> {
  private readonly agent: UserAgentInfo | undefined;
  private readonly page: PageContext;
  private cached: Record<string, string | number | null> | undefined;
  private initial: string | undefined;
  private readonly storedOwn: string | undefined;
  private renewed = false;

  constructor(
    private readonly port: RequestPort<Req>,
    private readonly options: ResolvedOptions<Req>,
    userAgents: UserAgentCache,
    private readonly firstTouch: StoredFirstTouch,
  ) {
    const userAgent = port.header('user-agent');
    const wantsAgent = options.requestProperties.browser || options.requestProperties.dropBots;
    this.agent = userAgent && wantsAgent ? userAgents.lookup(userAgent) : undefined;
    this.page = pageContext({
      fetchMode: port.header('sec-fetch-mode'),
      referer: port.header('referer'),
      accept: port.header('accept'),
      requestUrl: requestUrl(port),
    });
    if (firstTouch.ownCookie && options.requestProperties.browser) {
      this.storedOwn = validReferrer(port.cookies(initialReferrerCookieName(options.cookie.name))[0]);
    }
    this.initial = this.resolveInitial();
  }

  /** True when mixpanel-browser would not track this user agent and the options drop such events. */
  get bot(): boolean {
    return this.options.requestProperties.dropBots && this.agent?.blocked === true;
  }

  /** The device changed in this request: its first touch is this request's, as after the SDK's `reset()`. */
  deviceRenewed(): void {
    this.renewed = true;
    this.cached = undefined;
    this.initial = this.resolveInitial();
  }

  properties(): Record<string, string | number | null> {
    if (this.cached !== undefined) return this.cached;
    const { requestProperties, cookie: _cookie } = this.options;
    const facts: Record<string, string | number | null> = {};
    if (requestProperties.path) facts.$pathname = pathname(this.port.path);
    if (requestProperties.userAgent) {
      const agent = this.port.header('user-agent');
      if (agent) facts.$user_agent = agent;
    }
    if (requestProperties.browser) {
      Object.assign(
        facts,
        browserProperties({
          agent: this.agent,
          page: requestProperties.referrer ? this.page : { ...this.page, referrer: undefined },
          initialReferrer: this.initial,
          query: requestProperties.query,
          redactedParams: requestProperties.redactParams,
        }),
      );
    } else if (requestProperties.referrer && this.page.referrer) {
      const referrer = propertyUrl(
        this.page.referrer,
        requestProperties.query,
        requestProperties.redactParams,
      );
      facts.$referrer = referrer;
      const domain = referringDomain(referrer);
      if (domain !== '') facts.$referring_domain = domain;
    }
    this.cached = facts;
    return facts;
  }

  /** The first-touch pair to register in mixpanel-browser's cookie when the server writes it. */
  initialReferrerProperties(): Record<'$initial_referrer' | '$initial_referring_domain', string> | undefined {
    if (!this.options.requestProperties.browser || this.initial === undefined) return undefined;
    return initialReferrerProperties(this.initial) as Record<
      '$initial_referrer' | '$initial_referring_domain',
      string
    >;
  }

  /** The companion cookie to write (interop off), when first touch was learned or the device renewed. */
  initialReferrerCookie(attributes: CookieAttributes): CookieWrite | undefined {
    if (!this.firstTouch.ownCookie || !this.options.requestProperties.browser) return undefined;
    const name = initialReferrerCookieName(this.options.cookie.name);
    if (this.initial === undefined) {
      // A renewed device whose first page load is still to come: forget the previous device's first touch.
      return this.renewed && this.storedOwn !== undefined
        ? { name, value: '', attributes: { ...attributes, maxAge: 0 } }
        : undefined;
    }
    if (this.initial === this.storedOwn && !this.renewed) return undefined;
    return { name, value: this.initial, attributes };
  }

  private resolveInitial(): string | undefined {
    if (!this.renewed) {
      const stored = this.firstTouch.ownCookie
        ? this.storedOwn
        : validReferrer(this.firstTouch.storedInitialReferrer);
      if (stored !== undefined) return stored;
    }
    if (!this.page.navigation) return undefined;
    const referrer = this.page.referrer ?? '';
    if (referrer === '') return DIRECT;
    const { query, redactParams } = this.options.requestProperties;
    return propertyUrl(referrer, query, redactParams);
  }
}

function validReferrer(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || value.length > MAX_STORED_REFERRER || CONTROL.test(value)) {
    return undefined;
  }
  return value;
}

function pathname(path: string): string {
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}

/** The request's absolute URL from the port's protocol, host and path; undefined when the host is unusable. */
export function requestUrl(
  port: Pick<RequestPort, 'secure' | 'host' | 'path' | 'header'>,
): string | undefined {
  const host = port.host ?? port.header('host');
  if (host === undefined || !HOST.test(host) || !port.path.startsWith('/')) return undefined;
  return `${port.secure ? 'https' : 'http'}://${host}${port.path}`;
}
