/**
 * The default properties mixpanel-browser puts on every event, computed on the server from what a request
 * carries: User-Agent in, `$browser`… out; page URL and referrer in, `$current_url`, UTM keys, click IDs,
 * `$search_engine`… out. Pure functions; names and value formats are the SDK's.
 */
import { marketingParams, type QueryPolicy, redactUrl, referringDomain, searchInfo } from './url.js';
import type { UserAgentInfo } from './user-agent.js';

/** mixpanel-browser truncates every string value it sends to 255 characters. */
export const MAX_VALUE_LENGTH = 255;
/** `$initial_referrer` and `$initial_referring_domain` for type-in traffic. */
export const DIRECT = '$direct';

/** Which page a request belongs to, as far as its headers tell. */
export interface PageContext {
  /** The page's URL (`$current_url`), when known. */
  url: string | undefined;
  /** The page's `document.referrer` (`''` when none), or undefined when the request cannot tell. */
  referrer: string | undefined;
  /**
   * True when the request is known to be a page load (`Sec-Fetch-Mode: navigate`, or no Sec-Fetch headers
   * and an `Accept` that asks for HTML): only then is its Referer worth keeping as the device's first touch.
   */
  navigation: boolean;
}

/** Headers and URL parts {@link pageContext} reads. */
export interface PageRequest {
  /** `Sec-Fetch-Mode`; browsers send `navigate` for a page load and `cors`, `same-origin`… for fetch/XHR. */
  fetchMode: string | undefined;
  /** The `Referer` header. */
  referer: string | undefined;
  /** The `Accept` header. */
  accept: string | undefined;
  /** The request's own absolute URL, when host and protocol are known. */
  requestUrl: string | undefined;
}

/**
 * A page load's URL is the request's URL and its `document.referrer` is the Referer header. A fetch or XHR
 * from a page (`Sec-Fetch-Mode` other than `navigate`) carries the page's URL as Referer, and nothing of
 * the page's own referrer. Without `Sec-Fetch-Mode` (older browsers, non-browser clients) the request is
 * taken as a page load.
 */
export function pageContext(request: PageRequest): PageContext {
  const mode = request.fetchMode?.trim().toLowerCase();
  if (mode === undefined || mode === '' || mode === 'navigate') {
    const navigation = mode === 'navigate' || (request.accept?.includes('text/html') ?? false);
    return { url: request.requestUrl, referrer: request.referer ?? '', navigation };
  }
  return { url: request.referer, referrer: undefined, navigation: false };
}

/** Everything {@link browserProperties} needs, already extracted from the request. */
export interface BrowserPropertiesInput {
  /** Parsed User-Agent, or undefined when the request had none. */
  agent: UserAgentInfo | undefined;
  page: PageContext;
  /** The device's first-touch referrer (`$direct` or a URL), when known. */
  initialReferrer: string | undefined;
  query: QueryPolicy;
  redactedParams: ReadonlySet<string>;
}

function clip(value: string): string {
  return value.length > MAX_VALUE_LENGTH ? value.slice(0, MAX_VALUE_LENGTH) : value;
}

/** A URL as it may appear in a property: redacted per policy, clipped to 255 characters. */
export function propertyUrl(url: string, query: QueryPolicy, redacted: ReadonlySet<string>): string {
  return clip(redactUrl(url, query, redacted));
}

/** The first-touch pair mixpanel-browser registers once per device. */
export function initialReferrerProperties(initialReferrer: string): Record<string, string> {
  return {
    $initial_referrer: clip(initialReferrer),
    $initial_referring_domain:
      initialReferrer === DIRECT ? DIRECT : clip(referringDomain(initialReferrer)) || DIRECT,
  };
}

/**
 * mixpanel-browser's default event properties for one request, leaving out what the SDK leaves out (empty
 * `$os`, `$browser`, `$device`, `$referrer`, `$referring_domain`) and sending `$browser_version: null`
 * as it does when the version is unknown.
 */
export function browserProperties(input: BrowserPropertiesInput): Record<string, string | number | null> {
  const { agent, page, query, redactedParams } = input;
  const properties: Record<string, string | number | null> = {};
  if (agent !== undefined) {
    if (agent.os !== '') properties.$os = agent.os;
    if (agent.browser !== '') properties.$browser = agent.browser;
    if (agent.device !== '') properties.$device = agent.device;
    properties.$browser_version = agent.browserVersion;
  }
  if (page.referrer !== undefined && page.referrer !== '') {
    const referrer = redactUrl(page.referrer, query, redactedParams);
    properties.$referrer = clip(referrer);
    const domain = referringDomain(referrer);
    if (domain !== '') properties.$referring_domain = clip(domain);
    Object.assign(properties, clipAll(searchInfo(referrer)));
  }
  if (page.url !== undefined) {
    const url = redactUrl(page.url, query, redactedParams);
    properties.$current_url = clip(url);
    Object.assign(properties, clipAll(marketingParams(url)));
  }
  if (input.initialReferrer !== undefined) {
    Object.assign(properties, initialReferrerProperties(input.initialReferrer));
  }
  return properties;
}

function clipAll(values: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(values)) values[key] = clip(values[key] as string);
  return values;
}
