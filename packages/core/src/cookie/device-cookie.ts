import { isUuidV4 } from '../identity/ids.js';
import type { IdentityState } from '../identity/reconcile.js';
import { processKey } from './process-key.js';
import { hmac, safeEqual, verifyingSecret } from './signing.js';

/** Why a device cookie value was not accepted. */
export type DeviceCookieRejection = 'malformed' | 'unsigned' | 'tampered';

export type DecodedDeviceCookie =
  | { ok: true; state: IdentityState /** Signed with a retired secret: re-sign it. */; stale: boolean }
  | { ok: false; reason: DeviceCookieRejection };

const VERSION = '1';
const TAG_LENGTH = 16;
const TAG_PATTERN = /^[A-Za-z0-9_-]{16}$/;
/** Far above any value we write; longer values are rejected before any work is done on them. */
const MAX_VALUE_LENGTH = 200;

/**
 * The device cookie's value: `1.<device UUIDv4>.<user tag or empty>[.<HMAC-SHA256>]`. The user tag is a
 * keyed hash, so the cookie never carries a user ID.
 */
export class DeviceCookieCodec {
  private readonly tagKeys: readonly string[];

  /**
   * `secrets` sign the cookie (none: unsigned). `tagKeys` key the user tag; default the secrets, or a random
   * per-process key when there are none. Never the device ID, which the cookie itself shows: a tag keyed by it
   * would let anyone holding the cookie brute-force the user ID.
   */
  constructor(
    private readonly secrets: readonly string[],
    tagKeys: readonly string[] = secrets,
  ) {
    this.tagKeys = tagKeys.length > 0 ? tagKeys : [processKey()];
  }

  get signed(): boolean {
    return this.secrets.length > 0;
  }

  encode(state: IdentityState): string {
    const payload = `${VERSION}.${state.deviceId}.${state.userTag ?? ''}`;
    return this.signed ? `${payload}.${hmac(this.secrets[0] as string, payload)}` : payload;
  }

  decode(raw: string): DecodedDeviceCookie {
    if (raw.length > MAX_VALUE_LENGTH) return { ok: false, reason: 'malformed' };
    const parts = raw.split('.');
    if (parts.length !== 3 && parts.length !== 4) return { ok: false, reason: 'malformed' };
    const [version, deviceId, userTag, signature] = parts as [string, string, string, string | undefined];
    if (version !== VERSION || !isUuidV4(deviceId) || (userTag !== '' && !TAG_PATTERN.test(userTag))) {
      return { ok: false, reason: 'malformed' };
    }
    const state: IdentityState = { deviceId, userTag: userTag === '' ? undefined : userTag };
    if (!this.signed) return { ok: true, state, stale: signature !== undefined };
    if (signature === undefined) return { ok: false, reason: 'unsigned' };
    const signer = verifyingSecret(this.secrets, `${version}.${deviceId}.${userTag}`, signature);
    if (signer < 0) return { ok: false, reason: 'tampered' };
    return { ok: true, state, stale: signer > 0 };
  }

  /** Keyed hash of the user linked to a device, under the current tag key. */
  tagUser(userId: string, deviceId: string): string {
    return this.tagWith(this.tagKeys[0] as string, userId, deviceId);
  }

  /** True when `userTag` was computed for `userId` on `deviceId` under any configured tag key. */
  isTagOf(userTag: string, userId: string, deviceId: string): boolean {
    return this.tagKeys.some((key) => safeEqual(this.tagWith(key, userId, deviceId), userTag));
  }

  private tagWith(key: string, userId: string, deviceId: string): string {
    return hmac(key, `user\0${deviceId}\0${userId}`).slice(0, TAG_LENGTH);
  }
}
