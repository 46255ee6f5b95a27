/**
 * mixpanel-browser's URL-derived properties (UTM keys, click IDs, `$search_engine`/`mp_keyword`,
 * `$referring_domain`) with the SDK's own parsing rules, plus idstitch's query redaction. Pure functions.
 */

/** The campaign keys mixpanel-browser reads from the page URL: the classic five and the newer ones. */
export const CAMPAIGN_KEYWORDS: readonly string[] = [
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_content',
  'utm_term',
  'utm_id',
  'utm_source_platform',
  'utm_campaign_id',
  'utm_creative_format',
  'utm_marketing_tactic',
];

/** The ad-platform click IDs mixpanel-browser records from the page URL. */
export const CLICK_IDS: readonly string[] = [
  'dclid',
  'fbclid',
  'gclid',
  'ko_click_id',
  'li_fat_id',
  'msclkid',
  'sccid',
  'ttclid',
  'twclid',
  'wbraid',
];

/**
 * A query parameter as mixpanel-browser reads it: the first `?name=` or `&name=` anywhere in the URL, up
 * to the next `&` or `#`, URI-decoded (kept raw when malformed), `+` read as a space; `''` when absent.
 */
export function queryParam(url: string, name: string): string {
  let from = 0;
  for (;;) {
    const at = url.indexOf(`${name}=`, from);
    if (at === -1) return '';
    const before = url[at - 1];
    if (at > 0 && (before === '?' || before === '&')) {
      const start = at + name.length + 1;
      let end = start;
      while (end < url.length && url[end] !== '&' && url[end] !== '#') end += 1;
      let value = url.slice(start, end);
      try {
        value = decodeURIComponent(value);
      } catch {
        // mixpanel-browser keeps a malformed value as it is.
      }
      return value.replace(/\+/g, ' ');
    }
    from = at + 1;
  }
}

/** UTM keys and click IDs present in `url`, as mixpanel-browser adds them to every event of that page. */
export function marketingParams(url: string): Record<string, string> {
  const params: Record<string, string> = {};
  if (url.indexOf('=') === -1) return params;
  for (const key of CAMPAIGN_KEYWORDS) {
    const value = queryParam(url, key);
    if (value.length > 0) params[key] = value;
  }
  for (const key of CLICK_IDS) {
    const value = queryParam(url, key);
    if (value.length > 0) params[key] = value;
  }
  return params;
}

/** mixpanel-browser's search-engine detection from the referrer. */
export function searchEngine(referrer: string): string | null {
  if (/^https?:\/\/(.*)google.([^/?]*)/.test(referrer)) return 'google';
  if (/^https?:\/\/(.*)bing.com/.test(referrer)) return 'bing';
  if (/^https?:\/\/(.*)yahoo.com/.test(referrer)) return 'yahoo';
  if (/^https?:\/\/(.*)duckduckgo.com/.test(referrer)) return 'duckduckgo';
  return null;
}

/** `$search_engine` and `mp_keyword` (`q`, or `p` for Yahoo) from the referrer, as mixpanel-browser sets them. */
export function searchInfo(referrer: string): Record<string, string> {
  const engine = searchEngine(referrer);
  if (engine === null) return {};
  const keyword = queryParam(referrer, engine === 'yahoo' ? 'p' : 'q');
  return keyword.length > 0 ? { $search_engine: engine, mp_keyword: keyword } : { $search_engine: engine };
}

/** mixpanel-browser's `$referring_domain`: the third `/`-separated part (host and port), or `''`. */
export function referringDomain(referrer: string): string {
  const parts = referrer.split('/');
  return parts.length >= 3 ? (parts[2] as string) : '';
}

/**
 * Query parameters whose values idstitch replaces with `REDACTED` before a URL becomes `$current_url`,
 * `$referrer` or `$initial_referrer` (matched case-insensitively; names containing `token`, `secret`,
 * `password` or `passwd` are redacted too).
 */
export const DEFAULT_REDACTED_PARAMS: readonly string[] = [
  'access_token',
  'api_key',
  'apikey',
  'auth',
  'authorization',
  'client_secret',
  'code',
  'id_token',
  'key',
  'otp',
  'password',
  'pwd',
  'refresh_token',
  'secret',
  'session',
  'sessionid',
  'sig',
  'signature',
  'state',
  'ticket',
  'token',
];

const SECRET_NAME = /token|secret|passw(or)?d/i;
export const REDACTED = 'REDACTED';

/** How query strings reach URL properties. */
export type QueryPolicy = 'redact' | 'strip' | 'keep';

/**
 * A URL as idstitch puts it in a property: `'keep'` as is, `'strip'` without query and fragment, `'redact'`
 * (the default) with the value of every secret-looking parameter replaced by `REDACTED`, everything else
 * (utm keys, click IDs, ordinary queries) byte for byte as the browser sent it.
 */
export function redactUrl(url: string, policy: QueryPolicy, redacted: ReadonlySet<string>): string {
  if (policy === 'keep') return url;
  const query = url.indexOf('?');
  const hash = url.indexOf('#');
  if (policy === 'strip') {
    const end = query === -1 ? hash : hash === -1 ? query : Math.min(query, hash);
    return end === -1 ? url : url.slice(0, end);
  }
  if (query === -1 || (hash !== -1 && hash < query)) return url;
  const end = hash === -1 ? url.length : hash;
  const pairs = url.slice(query + 1, end).split('&');
  let changed = false;
  for (let i = 0; i < pairs.length; i += 1) {
    const pair = pairs[i] as string;
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    let name = pair.slice(0, eq);
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // A malformed name is compared as sent.
    }
    const lower = name.toLowerCase();
    if (redacted.has(lower) || SECRET_NAME.test(lower)) {
      pairs[i] = `${pair.slice(0, eq)}=${REDACTED}`;
      changed = true;
    }
  }
  return changed ? `${url.slice(0, query + 1)}${pairs.join('&')}${url.slice(end)}` : url;
}
