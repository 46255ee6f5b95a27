import { isAcceptableDeviceId } from '../identity/ids.js';

/**
 * mixpanel-browser's persisted object (`mp_<token>_mixpanel`, URI-encoded JSON). Besides identity
 * (`distinct_id`, `$device_id`, `$user_id`, `$had_persisted_distinct_id`) it holds super properties, first
 * touch (`$initial_referrer`, `$initial_referring_domain`), persisted UTM keys, `$search_engine`/`mp_keyword`,
 * and internal keys: queued people operations `__mps` ($set), `__mpso` ($set_once), `__mpus` ($unset),
 * `__mpa` ($add), `__mpap` ($append), `__mpr` ($remove), `__mpu` ($union), plus `__alias`, `__timers`.
 */
export type MixpanelBrowserState = Record<string, unknown>;

const MAX_VALUE_LENGTH = 4096;
const MAX_USER_ID_LENGTH = 255;
const MAX_REFERRER_LENGTH = 2048;

/** mixpanel-browser's persistence cookie name for a project token. */
export function mixpanelBrowserCookieName(token: string): string {
  return `mp_${token}_mixpanel`;
}

/**
 * Parses mixpanel-browser's cookie (URI-decoded JSON). Returns undefined for anything that is not a JSON
 * object, as mixpanel-browser itself treats an unparsable value as empty.
 */
export function parseMixpanelBrowserCookie(value: string | undefined): MixpanelBrowserState | undefined {
  if (value === undefined || value.length > MAX_VALUE_LENGTH) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    return parsed as MixpanelBrowserState;
  } catch {
    return undefined;
  }
}

/** The browser's device ID, when it is one we can safely echo. */
export function browserDeviceId(state: MixpanelBrowserState | undefined): string | undefined {
  const id = state?.$device_id;
  return isAcceptableDeviceId(id) ? id : undefined;
}

/** The user the browser SDK was told about (`identify()` persists `$user_id`), when it looks like an ID. */
export function browserUserId(state: MixpanelBrowserState | undefined): string | undefined {
  const id = state?.$user_id;
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id !== 'string') return undefined;
  const trimmed = id.trim();
  return trimmed === '' || trimmed.length > MAX_USER_ID_LENGTH || trimmed.startsWith('$device:')
    ? undefined
    : trimmed;
}

/** The first-touch referrer the SDK registered (`$direct` or a URL), when it is a plausible one. */
export function browserInitialReferrer(state: MixpanelBrowserState | undefined): string | undefined {
  const value = state?.$initial_referrer;
  return typeof value === 'string' && value !== '' && value.length <= MAX_REFERRER_LENGTH ? value : undefined;
}

/** Who the server says the visitor is, and whether that identity was created in this request. */
export interface ServerIdentity {
  deviceId: string;
  userId: string | undefined;
  /**
   * The device was minted or rotated in this request (new visitor, logout, another user, explicit reset):
   * the browser's previous state belongs to someone else and is cleared, as `reset()` clears it.
   */
  fresh: boolean;
  /** Registered once, as the SDK's `register_once` does, when the cookie is written anyway. */
  initialReferrer?: { $initial_referrer: string; $initial_referring_domain: string };
}

/**
 * The cookie value mixpanel-browser would have persisted had it made the server's identity change itself,
 * or undefined when the browser's cookie already agrees:
 * - fresh device: exactly what `reset()` leaves (`distinct_id: "$device:<id>"`, `$device_id`), plus
 *   `identify()`'s keys when a user is signed in;
 * - signed in: `identify(userId)` on the current state (`$user_id`, `distinct_id` = user, `__alias` gone,
 *   every other key kept, queued people operations included, which the SDK flushes on its next identify);
 * - anonymous: the browser's own identified user (client-side `identify()`) is left alone; otherwise the
 *   device is made the server's.
 */
export function nextMixpanelBrowserState(
  previous: MixpanelBrowserState | undefined,
  identity: ServerIdentity,
): MixpanelBrowserState | undefined {
  const { deviceId, userId, fresh } = identity;
  const base: MixpanelBrowserState = {};
  if (previous && !fresh) {
    for (const key of Object.keys(previous)) if (key !== '__proto__') base[key] = previous[key];
  }
  if (userId !== undefined) {
    if (base.distinct_id !== userId) delete base.__alias;
    base.$device_id = deviceId;
    base.$user_id = userId;
    base.distinct_id = userId;
  } else if (fresh || browserUserId(base) === undefined) {
    delete base.$user_id;
    base.$device_id = deviceId;
    base.distinct_id = `$device:${deviceId}`;
  }
  if (
    !fresh &&
    previous !== undefined &&
    previous.distinct_id === base.distinct_id &&
    previous.$device_id === base.$device_id &&
    previous.$user_id === base.$user_id
  ) {
    return undefined;
  }
  if (identity.initialReferrer && browserInitialReferrer(base) === undefined) {
    Object.assign(base, identity.initialReferrer);
  }
  return base;
}

// mixpanel-browser's `extract_domain`: a blunt heuristic rather than the public-suffix list, reproduced
// so that both write the same cookie (the SDK offers `cookie_domain` where it guesses wrong).
const SIMPLE_DOMAIN = /[a-z0-9][a-z0-9-]*\.[a-z]+$/i;
const CC_DOMAIN = /[a-z0-9][a-z0-9-]+\.[a-z.]{2,6}$/i;

/**
 * The `Domain` attribute mixpanel-browser gives its cookie on `host` with `cross_subdomain_cookie` on:
 * `.example.com` on `app.example.com`, none (host-only) on `localhost` or an IP address.
 */
export function mixpanelBrowserCookieDomain(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const hostname = host.startsWith('[') ? '' : (host.split(':')[0] ?? '').toLowerCase();
  if (hostname === '') return undefined;
  const parts = hostname.split('.');
  const tld = parts[parts.length - 1] as string;
  const pattern = tld.length > 4 || tld === 'com' || tld === 'org' ? SIMPLE_DOMAIN : CC_DOMAIN;
  const match = hostname.match(pattern);
  return match ? `.${match[0]}` : undefined;
}
