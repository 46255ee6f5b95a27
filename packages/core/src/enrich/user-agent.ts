/**
 * mixpanel-browser's device properties (`$browser`, `$browser_version`, `$os`, `$device`) computed from a
 * User-Agent header, with the same rules and the same output as the SDK's `_.info` (mixpanel-browser 2.x,
 * `src/utils.js`), because Mixpanel's Browser, OS and Device reports group by those exact strings. Where a
 * maintained parser (ua-parser-js) would name things differently ("Mobile Chrome", "macOS"), this file
 * deliberately does not. Pure functions; the only state is the bounded {@link UserAgentCache}.
 */

/** What the SDK reads from `navigator.vendor`: only "does it contain Apple" matters to its rules. */
export type Vendor = 'Apple Computer, Inc.' | 'Google Inc.' | '';

/** Device properties for one User-Agent string. */
export interface UserAgentInfo {
  /** `$browser`; `''` when the SDK would leave it out. */
  readonly browser: string;
  /** `$browser_version`: major.minor as a number, or `null` as the SDK sends it when unknown. */
  readonly browserVersion: number | null;
  /** `$os`; `''` when the SDK would leave it out. */
  readonly os: string;
  /** `$device`; `''` when the SDK would leave it out. */
  readonly device: string;
  /** True for the crawlers mixpanel-browser refuses to track. */
  readonly blocked: boolean;
}

/**
 * The `navigator.vendor` a browser sending `userAgent` reports, which a server never sees. Rule: WebKit
 * browsers report Apple (every iOS/iPadOS browser, since all use WebKit, and desktop Safari or other WebKit
 * browsers: `AppleWebKit` without `Chrome`, `Chromium` or `Android`); Blink browsers (Chrome, Edge,
 * Opera, Samsung Internet, Android WebViews) report Google; Gecko and everything else report nothing.
 */
export function vendorFromUserAgent(userAgent: string): Vendor {
  if (/iPhone|iPad|iPod/.test(userAgent)) return 'Apple Computer, Inc.';
  if (userAgent.includes('AppleWebKit')) {
    return /Chrome|Chromium|Android/.test(userAgent) ? 'Google Inc.' : 'Apple Computer, Inc.';
  }
  return '';
}

/** mixpanel-browser's `$browser`. Order matters: many UAs carry the tokens of later checks. */
export function browserName(userAgent: string, vendor: string = vendorFromUserAgent(userAgent)): string {
  const has = (token: string) => userAgent.includes(token);
  if (has(' OPR/')) return has('Mini') ? 'Opera Mini' : 'Opera';
  if (/(BlackBerry|PlayBook|BB10)/i.test(userAgent)) return 'BlackBerry';
  if (has('IEMobile') || has('WPDesktop')) return 'Internet Explorer Mobile';
  if (has('SamsungBrowser/')) return 'Samsung Internet';
  if (has('Edge') || has('Edg/')) return 'Microsoft Edge';
  if (has('FBIOS')) return 'Facebook Mobile';
  if (has('Whale/')) return 'Whale Browser';
  if (has('Chrome')) return 'Chrome';
  if (has('CriOS')) return 'Chrome iOS';
  if (has('UCWEB') || has('UCBrowser')) return 'UC Browser';
  if (has('FxiOS')) return 'Firefox iOS';
  if (vendor.includes('Apple')) return has('Mobile') ? 'Mobile Safari' : 'Safari';
  if (has('Android')) return 'Android Mobile';
  if (has('Konqueror')) return 'Konqueror';
  if (has('Firefox')) return 'Firefox';
  if (has('MSIE') || has('Trident/')) return 'Internet Explorer';
  if (has('Gecko')) return 'Mozilla';
  return '';
}

const VERSION_PATTERNS: Readonly<Record<string, RegExp>> = {
  'Internet Explorer Mobile': /rv:(\d+(\.\d+)?)/,
  'Microsoft Edge': /Edge?\/(\d+(\.\d+)?)/,
  Chrome: /Chrome\/(\d+(\.\d+)?)/,
  'Chrome iOS': /CriOS\/(\d+(\.\d+)?)/,
  'UC Browser': /(UCBrowser|UCWEB)\/(\d+(\.\d+)?)/,
  Safari: /Version\/(\d+(\.\d+)?)/,
  'Mobile Safari': /Version\/(\d+(\.\d+)?)/,
  Opera: /(Opera|OPR)\/(\d+(\.\d+)?)/,
  Firefox: /Firefox\/(\d+(\.\d+)?)/,
  'Firefox iOS': /FxiOS\/(\d+(\.\d+)?)/,
  Konqueror: /Konqueror:(\d+(\.\d+)?)/,
  BlackBerry: /BlackBerry (\d+(\.\d+)?)/,
  'Android Mobile': /android\s(\d+(\.\d+)?)/,
  'Samsung Internet': /SamsungBrowser\/(\d+(\.\d+)?)/,
  'Internet Explorer': /(rv:|MSIE )(\d+(\.\d+)?)/,
  Mozilla: /rv:(\d+(\.\d+)?)/,
  'Whale Browser': /Whale\/(\d+(\.\d+)?)/,
};

/** mixpanel-browser's `$browser_version`: the major.minor the browser's own pattern captures, or null. */
export function browserVersion(userAgent: string, browser: string): number | null {
  const pattern = Object.hasOwn(VERSION_PATTERNS, browser) ? VERSION_PATTERNS[browser] : undefined;
  const match = pattern === undefined ? null : userAgent.match(pattern);
  // The version is the second-to-last group: the whole number before its optional `.minor` group.
  return match ? Number.parseFloat(match[match.length - 2] as string) : null;
}

/** mixpanel-browser's `$os`. */
export function operatingSystem(userAgent: string): string {
  if (/Windows/i.test(userAgent)) {
    return /Phone/.test(userAgent) || /WPDesktop/.test(userAgent) ? 'Windows Phone' : 'Windows';
  }
  if (/(iPhone|iPad|iPod)/.test(userAgent)) return 'iOS';
  if (/Android/.test(userAgent)) return 'Android';
  if (/(BlackBerry|PlayBook|BB10)/i.test(userAgent)) return 'BlackBerry';
  if (/Mac/i.test(userAgent)) return 'Mac OS X';
  if (/Linux/.test(userAgent)) return 'Linux';
  if (/CrOS/.test(userAgent)) return 'Chrome OS';
  return '';
}

/** mixpanel-browser's `$device`. */
export function deviceName(userAgent: string): string {
  if (/Windows Phone/i.test(userAgent) || /WPDesktop/.test(userAgent)) return 'Windows Phone';
  if (/iPad/.test(userAgent)) return 'iPad';
  if (/iPod/.test(userAgent)) return 'iPod Touch';
  if (/iPhone/.test(userAgent)) return 'iPhone';
  if (/(BlackBerry|PlayBook|BB10)/i.test(userAgent)) return 'BlackBerry';
  if (/Android/.test(userAgent)) return 'Android';
  return '';
}

/** Crawlers whose page views mixpanel-browser never tracks (its `BLOCKED_UA_STRS`, matched case-insensitively). */
export const BLOCKED_USER_AGENT_TOKENS: readonly string[] = [
  'ahrefsbot',
  'ahrefssiteaudit',
  'amazonbot',
  'baiduspider',
  'bingbot',
  'bingpreview',
  'chrome-lighthouse',
  'facebookexternal',
  'petalbot',
  'pinterest',
  'screaming frog',
  'yahoo! slurp',
  'yandex',
  'adsbot-google',
  'apis-google',
  'duplexweb-google',
  'feedfetcher-google',
  'google favicon',
  'google web preview',
  'google-read-aloud',
  'googlebot',
  'googleweblight',
  'mediapartners-google',
  'storebot-google',
];

/** True when mixpanel-browser would refuse to track events from this user agent. */
export function isBlockedUserAgent(userAgent: string): boolean {
  const lower = userAgent.toLowerCase();
  return BLOCKED_USER_AGENT_TOKENS.some((token) => lower.includes(token));
}

/** Everything mixpanel-browser derives from the user agent, uncached. */
export function parseUserAgent(userAgent: string): UserAgentInfo {
  const browser = browserName(userAgent);
  return {
    browser,
    browserVersion: browserVersion(userAgent, browser),
    os: operatingSystem(userAgent),
    device: deviceName(userAgent),
    blocked: isBlockedUserAgent(userAgent),
  };
}

/** Longest User-Agent that is cached; longer ones (rare, often abusive) are parsed every time. */
export const MAX_CACHED_USER_AGENT_LENGTH = 512;

/**
 * A small least-recently-inserted cache of {@link parseUserAgent} results, bounded by entries, so a
 * server's handful of distinct UAs cost one parse each. At the default 256 entries of at most 512
 * characters it holds well under 300 KB.
 */
export class UserAgentCache {
  private readonly entries = new Map<string, UserAgentInfo>();
  hits = 0;
  misses = 0;

  constructor(readonly maxEntries = 256) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(userAgent: string): UserAgentInfo {
    const cached = this.entries.get(userAgent);
    if (cached !== undefined) {
      this.hits += 1;
      return cached;
    }
    this.misses += 1;
    const info = parseUserAgent(userAgent);
    if (userAgent.length <= MAX_CACHED_USER_AGENT_LENGTH && this.maxEntries > 0) {
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value as string;
        this.entries.delete(oldest);
      }
      this.entries.set(userAgent, info);
    }
    return info;
  }
}
