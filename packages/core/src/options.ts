import {
  COOKIE_NAME,
  type DeviceCookieOptions,
  DOMAIN,
  type ResolvedCookieOptions,
  resolveCookie,
} from './cookie/cookie-options.js';
import { DEFAULT_REDACTED_PARAMS, type QueryPolicy } from './enrich/url.js';
import { type IdstitchEnvironment, resolveEnvironment } from './environment.js';
import { IdstitchError } from './errors.js';
import type { IdentityStore } from './identity/identity-store.js';
import { MemoryIdentityStore } from './identity/identity-store.js';
import { RESERVED_EVENT_NAMES } from './messages/limits.js';
import { sanitizeProperties } from './messages/sanitize.js';
import type { Properties, Sink } from './messages/types.js';
import { fail, optionalBoolean, optionalFunction, rejectUnknownKeys } from './option-checks.js';

export type { DeviceCookieOptions } from './cookie/cookie-options.js';

/** Which of Mixpanel's ID Merge APIs the project uses (Project Settings → Identity Merge). */
export type IdMergeMode = 'simplified' | 'original';

/**
 * One identity with mixpanel-browser through its own persistence cookie (`persistence: 'cookie'`, the SDK's
 * default). Off unless given. The SDK's `localStorage` persistence cannot be shared: see the README.
 */
export interface MixpanelBrowserCookieOptions {
  /**
   * The project token, which names the cookie `mp_<token>_mixpanel`. That cookie is unauthenticated (page
   * scripts and other subdomains can write it): a device from it never carries held anonymous profile updates
   * onto a signed-in user. See SECURITY.md.
   */
  token: string;
  /**
   * Write that cookie as mixpanel-browser itself would persist it (same name, URI-encoded JSON, not
   * HttpOnly): on a new device and on every reset as its `reset()` does (a fresh `$device_id`,
   * `distinct_id: "$device:<id>"`, nothing else), and on a server-side sign-in as its `identify()` does
   * (`$user_id` and `distinct_id` set, every other key kept), so the SDK and the server never disagree on
   * who the visitor is. Default `true`; `false` only reads the SDK's device ID, and then a server-side logout
   * does not reach the browser SDK (the next person on that browser would continue the previous device).
   */
  write?: boolean;
  /**
   * The SDK's `cross_subdomain_cookie`: write the cookie for the registrable domain (`.example.com` on
   * `app.example.com`, found with the SDK's own heuristic) rather than host-only. Default `true`, as in
   * the SDK. Ignored when `domain` is given.
   */
  crossSubdomainCookie?: boolean;
  /** The SDK's `cookie_domain`, when you set one there (e.g. `.example.co.uk`). */
  domain?: string;
}

/** Request facts stamped on every event. */
export interface RequestPropertiesOptions {
  /** `$pathname`: the request path without its query string. Default `true`. */
  path?: boolean;
  /** `$referrer` and `$referring_domain` (the page's referrer, query per `query`). Default `true`. */
  referrer?: boolean;
  /** `$user_agent`. Default `true`. */
  userAgent?: boolean;
  /**
   * mixpanel-browser's default properties with its exact names and values: `$browser`,
   * `$browser_version`, `$os`, `$device`, `$current_url`, `$initial_referrer`, `$initial_referring_domain`,
   * UTM keys, click IDs, `$search_engine`, `mp_keyword`. Default `true`.
   */
  browser?: boolean;
  /**
   * How query strings reach `$current_url`, `$referrer` and `$initial_referrer`: `'redact'` (default) keeps
   * them as the browser SDK sends them but replaces the values of secret parameters (`token`, `password`,
   * `code`, `access_token`, … and any name containing token/secret/password) with `REDACTED`; `'strip'`
   * drops query and fragment (UTM keys are then lost too); `'keep'` sends them untouched.
   */
  query?: QueryPolicy;
  /** More query parameter names to redact (case-insensitive), added to the defaults. */
  redactParams?: readonly string[];
  /** Drop events from the crawlers mixpanel-browser refuses to track (counted as `bot`). Default `true`. */
  dropBots?: boolean;
}

/** {@link RequestPropertiesOptions} resolved. */
export interface ResolvedRequestProperties {
  path: boolean;
  referrer: boolean;
  userAgent: boolean;
  browser: boolean;
  query: QueryPolicy;
  redactParams: ReadonlySet<string>;
  dropBots: boolean;
}

/** When a visitor has opted out, idstitch sends nothing about them and sets no tracking cookie. */
export interface ConsentOptions<Req> {
  /** Honour the `Sec-GPC: 1` header (Global Privacy Control). Default `true`. */
  globalPrivacyControl?: boolean;
  /** A cookie whose value `1`/`true` opts the visitor out. Default `idstitch_optout`; `false` to ignore. */
  optOutCookie?: string | false;
  /** Your own consent check, consulted after the two above. */
  isOptedOut?: (request: Req) => boolean;
}

/** Receives log lines; never given secrets or cookie values. */
export interface IdstitchLogger {
  warn(message: string): void;
  error(message: string): void;
}

/** Options of every idstitch adapter. Each default is documented on its field and applied in one place. */
export interface IdstitchOptions<Req = unknown> {
  /**
   * Where messages go. Default: a `LocalSink` recording to `.idstitch/events.ndjson` (development, and
   * `idstitch report`); use `MixpanelSink` in production.
   */
  sink?: Sink;
  /** Default `'simplified'`. */
  idMerge?: IdMergeMode;
  /**
   * Rotate the device ID when a signed-in user signs out. Default `true` in simplified mode and `false` in
   * original mode, where frequent resets fill Mixpanel's 500-ID cluster limit.
   */
  resetOnLogout?: boolean;
  /** Reads the signed-in user's ID from the request; re-evaluated on every call. Default: the adapter's. */
  resolveUserId?: (request: Req) => unknown;
  cookie?: DeviceCookieOptions;
  /**
   * Name of the ordinary event that links a device to a user in simplified mode. Default `Identified`.
   * Never `$identify`, `$create_alias` or `$merge`, which Simplified projects ignore for merging.
   */
  identifyEventName?: string;
  /** Properties added to every event of the app. */
  superProperties?: Record<string, unknown>;
  requestProperties?: RequestPropertiesOptions;
  /** Send the client IP (as the framework resolves it) so Mixpanel geolocates events. Default `false`. */
  geolocate?: boolean;
  consent?: ConsentOptions<Req>;
  mixpanelBrowserCookie?: MixpanelBrowserCookieOptions;
  /**
   * Header carrying a native app's device ID (for example `x-device-id`). Default: none. Unauthenticated: any
   * client can send any value, so a device from it never carries held anonymous profile updates onto a signed-in
   * user (they are discarded and reported). See SECURITY.md.
   */
  deviceIdHeader?: string;
  /** Where anonymous profile updates wait for identify. Default: a bounded in-memory store. */
  identityStore?: IdentityStore;
  /**
   * Profile updates made while anonymous: `'hold'` them until identify (Mixpanel's advice) or `'send'` them to
   * the device's profile now. Default `'hold'`.
   */
  anonymousProfileUpdates?: 'hold' | 'send';
  /** Told about every fault idstitch handled instead of throwing. Default: a throttled logger warning. */
  onError?: (error: IdstitchError) => void;
  /** Default: `console`. */
  logger?: IdstitchLogger;
  /**
   * `'production'` refuses to start without `cookie.secret`; `'development'` signs with a per-process key. Default:
   * from `NODE_ENV` where the runtime has one (Node, Bun, Deno), and `'production'` where none can be read
   * (Cloudflare Workers, Deno without `--allow-env`): there, set `environment: 'development'` for local work.
   */
  environment?: IdstitchEnvironment;
}

/** Defaults an adapter supplies for its framework. */
export interface AdapterDefaults<Req> {
  resolveUserId: (request: Req) => unknown;
}

/**
 * Defaults chosen by the composition root (`createIdstitch`) rather than by this module, so that the options
 * module does not depend on any sink implementation.
 */
export interface EngineDefaults {
  /** Makes the sink used when `sink` is omitted; the engine passes one that makes a `LocalSink`. */
  sink: (idMerge: IdMergeMode) => Sink;
}

/** {@link IdstitchOptions} with every default applied and every value checked. */
export interface ResolvedOptions<Req> {
  sink: Sink;
  idMerge: IdMergeMode;
  resetOnLogout: boolean;
  resolveUserId: (request: Req) => unknown;
  cookie: ResolvedCookieOptions;
  identifyEventName: string;
  superProperties: Properties;
  requestProperties: ResolvedRequestProperties;
  geolocate: boolean;
  consent: {
    globalPrivacyControl: boolean;
    optOutCookie: string | false;
    isOptedOut: ((request: Req) => boolean) | undefined;
  };
  mixpanelBrowserCookie:
    | (Required<Omit<MixpanelBrowserCookieOptions, 'domain'>> & { domain?: string })
    | undefined;
  deviceIdHeader: string | undefined;
  identityStore: IdentityStore;
  anonymousProfileUpdates: 'hold' | 'send';
  report: (error: IdstitchError) => void;
  logger: IdstitchLogger;
}

/** Every key of {@link IdstitchOptions}: any other key is refused at start-up with a "did you mean". */
const OPTION_KEYS = [
  'sink',
  'idMerge',
  'resetOnLogout',
  'resolveUserId',
  'cookie',
  'identifyEventName',
  'superProperties',
  'requestProperties',
  'geolocate',
  'consent',
  'mixpanelBrowserCookie',
  'deviceIdHeader',
  'identityStore',
  'anonymousProfileUpdates',
  'onError',
  'logger',
  'environment',
] as const satisfies readonly (keyof IdstitchOptions)[];
const MIXPANEL_BROWSER_COOKIE_KEYS = [
  'token',
  'write',
  'crossSubdomainCookie',
  'domain',
] as const satisfies readonly (keyof MixpanelBrowserCookieOptions)[];
const REQUEST_PROPERTIES_KEYS = [
  'path',
  'referrer',
  'userAgent',
  'browser',
  'query',
  'redactParams',
  'dropBots',
] as const satisfies readonly (keyof RequestPropertiesOptions)[];
type Unlisted =
  | Exclude<keyof RequestPropertiesOptions, (typeof REQUEST_PROPERTIES_KEYS)[number]>
  | Exclude<keyof IdstitchOptions, (typeof OPTION_KEYS)[number]>
  | Exclude<keyof MixpanelBrowserCookieOptions, (typeof MIXPANEL_BROWSER_COOKIE_KEYS)[number]>;
// A new option must be listed above, or rejectUnknownKeys would refuse it: this line stops the type-check.
const everyOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyOptionListed;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** Logs each error code at most once per window, with a count of what was suppressed. */
function throttledReporter(logger: IdstitchLogger, windowMs = 10_000): (error: IdstitchError) => void {
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  return (error) => {
    const now = Date.now();
    const entry = lastLogged.get(error.code);
    if (entry && now - entry.at < windowMs) {
      entry.suppressed++;
      return;
    }
    const suffix = entry?.suppressed ? ` (${entry.suppressed} more like it suppressed)` : '';
    lastLogged.set(error.code, { at: now, suppressed: 0 });
    logger.warn(`${error.message} [${error.code}]${suffix}`);
  };
}

/** A hook's own failure is logged, never thrown into the request. */
function safeReporter(
  onError: (error: IdstitchError) => void,
  logger: IdstitchLogger,
): (error: IdstitchError) => void {
  return (error) => {
    try {
      onError(error);
    } catch (hookError) {
      logger.error(
        `idstitch: the onError hook threw (${hookError instanceof Error ? hookError.message : String(hookError)}) while reporting: ${error.message}`,
      );
    }
  };
}

/**
 * Applies defaults and validates every option once, at start-up. Throws {@link IdstitchOptionsError} naming
 * the option and the fix.
 */
export function resolveOptions<Req>(
  options: IdstitchOptions<Req> | undefined,
  defaults: AdapterDefaults<Req>,
  engine: EngineDefaults,
): ResolvedOptions<Req> {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    fail('options', 'must be an object', 'Call the middleware factory with `{ ... }` or no argument.');
  }
  const o = options ?? {};
  rejectUnknownKeys(o, '', OPTION_KEYS);
  const idMerge = o.idMerge ?? 'simplified';
  if (idMerge !== 'simplified' && idMerge !== 'original') {
    fail(
      'idMerge',
      `must be 'simplified' or 'original', got ${String(idMerge)}`,
      'Check Project Settings → Identity Merge in Mixpanel.',
    );
  }
  optionalBoolean(o.resetOnLogout, 'resetOnLogout');
  optionalBoolean(o.geolocate, 'geolocate');
  optionalFunction(o.resolveUserId, 'resolveUserId');
  optionalFunction(o.onError, 'onError');
  const logger = o.logger ?? console;
  if (typeof logger?.warn !== 'function' || typeof logger.error !== 'function') {
    fail(
      'logger',
      'must have warn and error methods',
      'Pass `console`, a pino/winston logger, or leave it out.',
    );
  }
  // First, so that a production start-up without a secret fails before anything else is made.
  const environment = resolveEnvironment(o.environment);
  const cookie = resolveCookie(o.cookie, (message) => logger.warn(message), environment);
  if (o.sink === undefined && environment.name === 'production') {
    logger.warn(
      'idstitch: no sink configured; recording to a local file. Pass `sink: new MixpanelSink({ token })`.',
    );
  }
  const sink = o.sink ?? engine.sink(idMerge);
  if (
    typeof sink?.write !== 'function' ||
    typeof sink.flush !== 'function' ||
    typeof sink.close !== 'function'
  ) {
    fail(
      'sink',
      'must implement write, flush and close',
      'Pass a MixpanelSink, LocalSink, MemorySink or your own Sink.',
    );
  }
  const identifyEventName = o.identifyEventName ?? 'Identified';
  if (
    typeof identifyEventName !== 'string' ||
    identifyEventName.trim() === '' ||
    identifyEventName.length > 255
  ) {
    fail(
      'identifyEventName',
      'must be a non-empty string of at most 255 characters',
      'Use a name such as `Identified`.',
    );
  }
  if (RESERVED_EVENT_NAMES.has(identifyEventName)) {
    fail(
      'identifyEventName',
      `is ${identifyEventName}, which Simplified ID Merge ignores for merging`,
      'Use an ordinary event name such as `Identified`.',
    );
  }
  const superProperties = sanitizeProperties(o.superProperties, { dropIdentityFields: true });
  if (superProperties.issues.length > 0) {
    const first = superProperties.issues[0]!;
    fail(
      `superProperties.${first.path}`,
      first.reason,
      first.reason.includes('identity field')
        ? 'Remove it: idstitch stamps identity on every event itself.'
        : 'Pass plain JSON-compatible values.',
    );
  }
  const request = o.requestProperties ?? {};
  rejectUnknownKeys(request, 'requestProperties', REQUEST_PROPERTIES_KEYS);
  optionalBoolean(request.path, 'requestProperties.path');
  optionalBoolean(request.referrer, 'requestProperties.referrer');
  optionalBoolean(request.userAgent, 'requestProperties.userAgent');
  optionalBoolean(request.browser, 'requestProperties.browser');
  optionalBoolean(request.dropBots, 'requestProperties.dropBots');
  const query = request.query ?? 'redact';
  if (query !== 'redact' && query !== 'strip' && query !== 'keep') {
    fail(
      'requestProperties.query',
      `must be 'redact', 'strip' or 'keep', got ${String(query)}`,
      "Use 'redact' to keep queries with secret parameters redacted.",
    );
  }
  const redactParams = request.redactParams ?? [];
  if (!Array.isArray(redactParams) || redactParams.some((name) => typeof name !== 'string' || name === '')) {
    fail(
      'requestProperties.redactParams',
      'must be an array of query parameter names',
      "Pass for example `['invite']`.",
    );
  }
  const consent = o.consent ?? {};
  rejectUnknownKeys(consent, 'consent', ['globalPrivacyControl', 'optOutCookie', 'isOptedOut']);
  optionalBoolean(consent.globalPrivacyControl, 'consent.globalPrivacyControl');
  optionalFunction(consent.isOptedOut, 'consent.isOptedOut');
  const optOutCookie = consent.optOutCookie ?? 'idstitch_optout';
  if (optOutCookie !== false && (typeof optOutCookie !== 'string' || !COOKIE_NAME.test(optOutCookie))) {
    fail('consent.optOutCookie', 'must be a cookie name or false', 'Use for example `idstitch_optout`.');
  }
  let mixpanelBrowserCookie: ResolvedOptions<Req>['mixpanelBrowserCookie'];
  if (o.mixpanelBrowserCookie !== undefined) {
    const browser = o.mixpanelBrowserCookie;
    if (browser !== null && typeof browser === 'object')
      rejectUnknownKeys(browser, 'mixpanelBrowserCookie', MIXPANEL_BROWSER_COOKIE_KEYS);
    if (typeof browser?.token !== 'string' || !TOKEN.test(browser.token)) {
      fail(
        'mixpanelBrowserCookie.token',
        'must be your Mixpanel project token',
        'Copy it from Project Settings → Access Keys.',
      );
    }
    optionalBoolean(browser.write, 'mixpanelBrowserCookie.write');
    optionalBoolean(browser.crossSubdomainCookie, 'mixpanelBrowserCookie.crossSubdomainCookie');
    if (
      browser.domain !== undefined &&
      (typeof browser.domain !== 'string' || !DOMAIN.test(browser.domain))
    ) {
      fail(
        'mixpanelBrowserCookie.domain',
        'must be a domain name such as `.example.com`',
        'Use the same domain mixpanel-browser writes its cookie for.',
      );
    }
    mixpanelBrowserCookie = {
      token: browser.token,
      write: browser.write ?? true,
      crossSubdomainCookie: browser.crossSubdomainCookie ?? true,
      domain: browser.domain,
    };
  }
  if (
    o.deviceIdHeader !== undefined &&
    (typeof o.deviceIdHeader !== 'string' || !HEADER_NAME.test(o.deviceIdHeader))
  ) {
    fail('deviceIdHeader', 'must be an HTTP header name', 'Use for example `x-device-id`.');
  }
  const anonymousProfileUpdates = o.anonymousProfileUpdates ?? 'hold';
  if (anonymousProfileUpdates !== 'hold' && anonymousProfileUpdates !== 'send') {
    fail(
      'anonymousProfileUpdates',
      `must be 'hold' or 'send', got ${String(anonymousProfileUpdates)}`,
      "Use 'hold' to follow Mixpanel's advice.",
    );
  }
  const report = safeReporter(o.onError ?? throttledReporter(logger), logger);
  const identityStore =
    o.identityStore ??
    new MemoryIdentityStore({
      onDrop: (_deviceId, count, reason) =>
        report(
          new IdstitchError(
            'held_updates_dropped',
            `dropped ${count} held anonymous profile update(s): ${reason}`,
            { details: { count, reason } },
          ),
        ),
    });
  if (typeof identityStore?.hold !== 'function' || typeof identityStore.take !== 'function') {
    fail(
      'identityStore',
      'must implement hold and take',
      'Pass a MemoryIdentityStore, RedisIdentityStore or your own IdentityStore.',
    );
  }
  return {
    sink,
    idMerge,
    resetOnLogout: o.resetOnLogout ?? idMerge === 'simplified',
    resolveUserId: o.resolveUserId ?? defaults.resolveUserId,
    cookie,
    identifyEventName,
    superProperties: superProperties.properties,
    requestProperties: {
      path: request.path ?? true,
      referrer: request.referrer ?? true,
      userAgent: request.userAgent ?? true,
      browser: request.browser ?? true,
      query,
      redactParams: new Set([...DEFAULT_REDACTED_PARAMS, ...redactParams.map((name) => name.toLowerCase())]),
      dropBots: request.dropBots ?? true,
    },
    geolocate: o.geolocate ?? false,
    consent: {
      globalPrivacyControl: consent.globalPrivacyControl ?? true,
      optOutCookie,
      isOptedOut: consent.isOptedOut,
    },
    mixpanelBrowserCookie,
    deviceIdHeader: o.deviceIdHeader?.toLowerCase(),
    identityStore,
    anonymousProfileUpdates,
    report,
    logger,
  };
}
