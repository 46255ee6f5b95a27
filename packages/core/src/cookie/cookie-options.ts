import type { ResolvedEnvironment } from '../environment.js';
import { fail, optionalBoolean, rejectUnknownKeys } from '../option-checks.js';
import { firstProcessKeyWarning, processKey } from './process-key.js';
import type { VerifiedCacheBounds } from './verified-cache.js';

/**
 * The default of `cookie.verifiedCache`: 4096 returning visitors' cookies (and their user tags), at most 4 MiB.
 * An entry is about 0.4 KB, so the entry bound is the one that binds unless values are unusually long.
 */
export const DEFAULT_VERIFIED_CACHE: Readonly<VerifiedCacheBounds> = Object.freeze({
  maxEntries: 4096,
  maxBytes: 4 * 1024 * 1024,
});

/** The anonymous device-ID cookie. */
export interface DeviceCookieOptions {
  /**
   * Cookie name. Default `idstitch_device`; on HTTPS requests it is written as `__Host-idstitch_device` (see
   * `hostPrefix`).
   */
  name?: string;
  /**
   * Secret for HMAC-SHA256 signing (at least 16 characters). With a secret, tampered or unsigned values are
   * treated as absent. **Required in production** (`NODE_ENV` is `production`, the `environment` option says so,
   * or no environment can be read, as on Cloudflare Workers): `idstitch()` refuses to start without one
   * (or `insecureUnsigned: true`). In development, a random key made once per process signs cookies instead, so
   * devices reset when the process restarts.
   */
  secret?: string;
  /** Several secrets for rotation: sign with the first, accept any. Use instead of `secret`. */
  secrets?: readonly string[];
  /**
   * Opt out of signing, knowingly: device cookies can then be forged and planted by anyone, so a visitor's device
   * can be chosen by someone else. User tags are still keyed by a random per-process key (never by the public
   * device ID), so restarts and other instances see a signed-in user's device as new. Default `false`.
   */
  insecureUnsigned?: boolean;
  /** Cookie domain, e.g. `.example.com` to share across subdomains. Default: host-only. */
  domain?: string;
  /** `true`, `false`, or `'auto'` (Secure when the request arrived over HTTPS). Default `'auto'`. */
  secure?: boolean | 'auto';
  /**
   * On Secure requests with no `domain`, write the cookie as `__Host-<name>`: browsers accept such a cookie only
   * from this host, with `Path=/` and no `Domain`, so no sibling subdomain or longer path can plant one that
   * shadows it. A cookie under the plain name is still read (and moved to the prefixed name) so existing visitors
   * keep their device. Default `true`; ignored when `name` already has a `__Host-`/`__Secure-` prefix.
   */
  hostPrefix?: boolean;
  /** Lifetime in **seconds**. Default one year; at most 400 days (browsers cap there). */
  maxAge?: number;
  /** Default `true`: page scripts cannot read the device ID. */
  httpOnly?: boolean;
  /** Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /**
   * Remember device cookies (and user tags) that verified, so a returning visitor's request skips the HMAC.
   * Only successful verifications are kept, keyed by the whole value: a tampered or forged value always gets the
   * full constant-time check. Bounded by `maxEntries` and `maxBytes` (estimated heap), evicting entries not used
   * lately first (second-chance, or clock, eviction). `false` verifies every value. Default
   * `{ maxEntries: 4096, maxBytes: 4 MiB }` ({@link DEFAULT_VERIFIED_CACHE}); a field left out keeps its default.
   */
  verifiedCache?: Partial<VerifiedCacheBounds> | false;
}

/** {@link DeviceCookieOptions} with every default applied. */
export interface ResolvedCookieOptions {
  /** The name read and written on plain-HTTP requests, and read for transition on HTTPS ones. */
  name: string;
  /** `__Host-<name>`, written and read first on Secure requests; undefined when the prefix cannot apply. */
  hostName: string | undefined;
  /** Signing secrets, current first; empty only with `insecureUnsigned`. */
  secrets: readonly string[];
  /** Keys of the user tag, current first: the secrets, or the per-process key when unsigned. */
  tagKeys: readonly string[];
  insecureUnsigned: boolean;
  domain: string | undefined;
  secure: boolean | 'auto';
  maxAge: number;
  httpOnly: boolean;
  sameSite: 'lax' | 'strict' | 'none';
  path: '/';
  /** Bounds of the verified-cookie cache, or false when every value is verified. */
  verifiedCache: Readonly<VerifiedCacheBounds> | false;
}

const COOKIE_OPTION_KEYS = [
  'name',
  'secret',
  'secrets',
  'insecureUnsigned',
  'domain',
  'secure',
  'hostPrefix',
  'maxAge',
  'httpOnly',
  'sameSite',
  'verifiedCache',
] as const satisfies readonly (keyof DeviceCookieOptions)[];
type Unlisted = Exclude<keyof DeviceCookieOptions, (typeof COOKIE_OPTION_KEYS)[number]>;
// A new cookie option must be listed above, or rejectUnknownKeys would refuse it.
const everyCookieOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyCookieOptionListed;

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;
const MAX_COOKIE_AGE_SECONDS = 400 * 24 * 60 * 60;
export const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const DOMAIN = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const SECRET_FIX = 'Generate one with `openssl rand -base64 32` and load it from the environment.';

function resolveSecrets(cookie: DeviceCookieOptions): readonly string[] {
  if (cookie.secret !== undefined && cookie.secrets !== undefined) {
    fail(
      'cookie.secrets',
      'cannot be combined with `cookie.secret`',
      'Use `secrets: [newSecret, oldSecret]` alone.',
    );
  }
  const secrets = cookie.secrets ?? (cookie.secret === undefined ? [] : [cookie.secret]);
  if (!Array.isArray(secrets) || (cookie.secrets !== undefined && secrets.length === 0)) {
    fail(
      'cookie.secrets',
      'must be a non-empty array of strings',
      'Pass `secrets: [currentSecret, ...retiredSecrets]`.',
    );
  }
  secrets.forEach((secret, i) => {
    const option = cookie.secrets ? `cookie.secrets[${i}]` : 'cookie.secret';
    if (typeof secret !== 'string' || secret.length < 16) {
      fail(option, 'must be a string of at least 16 characters', SECRET_FIX);
    }
  });
  return Object.freeze([...secrets]);
}

/**
 * Who signs the cookie and keys the user tag. Fails closed: in production a missing secret stops start-up unless
 * the app opted out with `insecureUnsigned`; in development a per-process key signs, with one warning.
 */
function resolveKeys(
  options: DeviceCookieOptions,
  warn: (message: string) => void,
  environment: ResolvedEnvironment,
): Pick<ResolvedCookieOptions, 'secrets' | 'tagKeys' | 'insecureUnsigned'> {
  optionalBoolean(options.insecureUnsigned, 'cookie.insecureUnsigned');
  const configured = resolveSecrets(options);
  const insecureUnsigned = options.insecureUnsigned ?? false;
  if (insecureUnsigned) {
    if (configured.length > 0) {
      fail(
        'cookie.insecureUnsigned',
        'cannot be combined with a cookie secret',
        'Remove `insecureUnsigned` to sign the cookie with your secret.',
      );
    }
    return { secrets: [], tagKeys: [processKey()], insecureUnsigned };
  }
  if (configured.length > 0) return { secrets: configured, tagKeys: configured, insecureUnsigned };
  if (environment.name === 'production') {
    fail(
      'cookie.secret',
      `is required in production (${environment.because}): without it anyone can forge or plant a device cookie`,
      `Set \`cookie: { secret: process.env.IDSTITCH_COOKIE_SECRET }\` (${SECRET_FIX.charAt(0).toLowerCase()}${SECRET_FIX.slice(1, -1)}), or opt out knowingly with \`cookie: { insecureUnsigned: true }\`.`,
    );
  }
  if (firstProcessKeyWarning()) {
    warn(
      'idstitch: no `cookie.secret`; signing device cookies with a random key made for this process, so devices ' +
        'reset when it restarts. Set `cookie.secret` (required when NODE_ENV is "production").',
    );
  }
  const key = Object.freeze([processKey()]);
  return { secrets: key, tagKeys: key, insecureUnsigned };
}

function resolveVerifiedCache(
  value: DeviceCookieOptions['verifiedCache'],
): ResolvedCookieOptions['verifiedCache'] {
  if (value === false) return false;
  if (value === undefined) return DEFAULT_VERIFIED_CACHE;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(
      'cookie.verifiedCache',
      `must be an object or false, got ${value === null ? 'null' : typeof value}`,
      'Pass `{ maxEntries: 4096, maxBytes: 4 * 1024 * 1024 }`, `false` to verify every cookie, or leave it out.',
    );
  }
  rejectUnknownKeys(value, 'cookie.verifiedCache', ['maxEntries', 'maxBytes']);
  const bounds = {
    maxEntries: value.maxEntries ?? DEFAULT_VERIFIED_CACHE.maxEntries,
    maxBytes: value.maxBytes ?? DEFAULT_VERIFIED_CACHE.maxBytes,
  };
  for (const key of ['maxEntries', 'maxBytes'] as const) {
    const bound = bounds[key];
    if (typeof bound !== 'number' || !Number.isSafeInteger(bound) || bound < 1) {
      fail(
        `cookie.verifiedCache.${key}`,
        `must be a positive whole number, got ${String(bound)}`,
        `Pass for example ${DEFAULT_VERIFIED_CACHE[key]} (the default), or \`verifiedCache: false\` to disable the cache.`,
      );
    }
  }
  return Object.freeze(bounds);
}

/** Validates and defaults the device cookie's options. */
export function resolveCookie(
  cookie: DeviceCookieOptions | undefined,
  warn: (message: string) => void,
  environment: ResolvedEnvironment,
): ResolvedCookieOptions {
  if (cookie !== undefined && (cookie === null || typeof cookie !== 'object')) {
    fail(
      'cookie',
      'must be an object',
      'Pass `cookie: { secret: process.env.IDSTITCH_COOKIE_SECRET }` or leave it out.',
    );
  }
  const options = cookie ?? {};
  rejectUnknownKeys(options, 'cookie', COOKIE_OPTION_KEYS);
  const name = options.name ?? 'idstitch_device';
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) {
    fail(
      'cookie.name',
      "must be a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)",
      'Use a name such as `idstitch_device`.',
    );
  }
  const maxAge = options.maxAge ?? ONE_YEAR_SECONDS;
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge <= 0) {
    fail(
      'cookie.maxAge',
      `must be a positive whole number of seconds, got ${String(maxAge)}`,
      'Pass for example `60 * 60 * 24 * 365`.',
    );
  }
  if (maxAge > MAX_COOKIE_AGE_SECONDS) {
    fail(
      'cookie.maxAge',
      `is ${maxAge} seconds, over the 400-day cap browsers enforce (${MAX_COOKIE_AGE_SECONDS})`,
      'It is in seconds, not milliseconds: divide by 1000 or pass at most 400 days.',
    );
  }
  if (options.domain !== undefined && (typeof options.domain !== 'string' || !DOMAIN.test(options.domain))) {
    fail(
      'cookie.domain',
      'must be a domain name such as `.example.com`',
      'Fix the value or leave it out for a host-only cookie.',
    );
  }
  const secure = options.secure ?? 'auto';
  if (secure !== true && secure !== false && secure !== 'auto') {
    fail(
      'cookie.secure',
      `must be true, false or 'auto', got ${String(secure)}`,
      "Use 'auto' to follow the request's protocol.",
    );
  }
  optionalBoolean(options.httpOnly, 'cookie.httpOnly');
  optionalBoolean(options.hostPrefix, 'cookie.hostPrefix');
  const sameSite = options.sameSite ?? 'lax';
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') {
    fail(
      'cookie.sameSite',
      `must be 'lax', 'strict' or 'none', got ${String(sameSite)}`,
      "Use 'lax' unless you embed the app cross-site.",
    );
  }
  if (sameSite === 'none' && secure === false) {
    fail(
      'cookie.sameSite',
      "is 'none', which browsers accept only on Secure cookies",
      "Set `cookie.secure` to true or 'auto', or use sameSite 'lax'.",
    );
  }
  const prefixed = /^__(host|secure)-/i.test(name);
  if (prefixed && secure === false) {
    fail(
      'cookie.name',
      `is ${name}, which browsers accept only on Secure cookies`,
      "Set `cookie.secure` to true or 'auto'.",
    );
  }
  if (/^__host-/i.test(name) && options.domain !== undefined) {
    fail('cookie.domain', `cannot be set on a __Host- cookie (${name})`, 'Remove `domain` or the prefix.');
  }
  const hostName =
    !prefixed && (options.hostPrefix ?? true) && options.domain === undefined && secure !== false
      ? `__Host-${name}`
      : undefined;
  return {
    name,
    hostName,
    ...resolveKeys(options, warn, environment),
    domain: options.domain,
    secure,
    maxAge,
    httpOnly: options.httpOnly ?? true,
    sameSite,
    path: '/',
    verifiedCache: resolveVerifiedCache(options.verifiedCache),
  };
}
