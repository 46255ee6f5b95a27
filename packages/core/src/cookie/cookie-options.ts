import { IdstitchOptionsError } from '../errors.js';

/** The anonymous device-ID cookie. */
export interface DeviceCookieOptions {
  /** Cookie name. Default `idstitch_device`. */
  name?: string;
  /**
   * Secret for HMAC-SHA256 signing. With a secret, tampered or unsigned values are treated as absent.
   * Strongly recommended in production (idstitch warns without one). At least 16 characters.
   */
  secret?: string;
  /** Several secrets for rotation: sign with the first, accept any. Use instead of `secret`. */
  secrets?: readonly string[];
  /** Cookie domain, e.g. `.example.com` to share across subdomains. Default: host-only. */
  domain?: string;
  /** `true`, `false`, or `'auto'` (Secure when the request arrived over HTTPS). Default `'auto'`. */
  secure?: boolean | 'auto';
  /** Lifetime in **seconds**. Default one year; at most 400 days (browsers cap there). */
  maxAge?: number;
  /** Default `true`: page scripts cannot read the device ID. */
  httpOnly?: boolean;
  /** Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none';
}

/** {@link DeviceCookieOptions} with every default applied and every value checked. */
export type ResolvedCookieOptions = Required<Omit<DeviceCookieOptions, 'secret' | 'secrets' | 'domain'>> & {
  secrets: readonly string[];
  domain: string | undefined;
  path: '/';
};

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;
const MAX_COOKIE_AGE_SECONDS = 400 * 24 * 60 * 60;
/** A cookie name as RFC 6265 allows it (a token). */
export const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A domain name, optionally with a leading dot. */
export const DOMAIN = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function fail(option: string, problem: string, fix: string): never {
  throw new IdstitchOptionsError(option, problem, fix);
}

function optionalBoolean(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'boolean')
    fail(option, `must be true or false, got ${typeof value}`, 'Pass a boolean or leave it out.');
}

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
      fail(
        option,
        'must be a string of at least 16 characters',
        'Generate one with `openssl rand -base64 32` and load it from the environment.',
      );
    }
  });
  return Object.freeze([...secrets]);
}

/**
 * Applies the device cookie's defaults and validates it, once at start-up. Throws {@link IdstitchOptionsError}
 * naming the option (`cookie.*`) and the fix.
 */
export function resolveCookie(cookie: DeviceCookieOptions | undefined): ResolvedCookieOptions {
  if (cookie !== undefined && (cookie === null || typeof cookie !== 'object')) {
    fail(
      'cookie',
      'must be an object',
      'Pass `cookie: { secret: process.env.IDSTITCH_COOKIE_SECRET }` or leave it out.',
    );
  }
  const options = cookie ?? {};
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
  return {
    name,
    secrets: resolveSecrets(options),
    domain: options.domain,
    secure,
    maxAge,
    httpOnly: options.httpOnly ?? true,
    sameSite,
    path: '/',
  };
}
