import { isAcceptableDeviceId } from '../identity/ids.js';

/** Keys idstitch owns inside mixpanel-browser's persisted object; every other key is preserved as is. */
const IDENTITY_KEYS = ['distinct_id', '$device_id', '$user_id'] as const;
const MAX_VALUE_LENGTH = 4096;

export type MixpanelBrowserState = Record<string, unknown>;

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

/**
 * The cookie value that makes mixpanel-browser adopt `deviceId` as an anonymous device (after a new device or
 * a reset), keeping unknown keys such as super properties and UTM data.
 */
export function seedMixpanelBrowserState(
  previous: MixpanelBrowserState | undefined,
  deviceId: string,
): string {
  const next: MixpanelBrowserState = {};
  if (previous) {
    for (const key of Object.keys(previous)) {
      if (key === '__proto__' || (IDENTITY_KEYS as readonly string[]).includes(key)) continue;
      next[key] = previous[key];
    }
  }
  next.distinct_id = `$device:${deviceId}`;
  next.$device_id = deviceId;
  return JSON.stringify(next);
}
