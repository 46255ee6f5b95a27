import { isUuidV4 } from '../identity/ids.js';
import type { IdentityState } from '../identity/reconcile.js';
import { processKey } from './process-key.js';
import { hmac, safeEqual, verifyingSecret } from './signing.js';
import { entryBytes, ownCopy, VerifiedCache, type VerifiedCacheBounds } from './verified-cache.js';

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

type AcceptedDeviceCookie = Extract<DecodedDeviceCookie, { ok: true }>;

/**
 * What a constant-time check established, keyed by the string that carried the MAC: a whole cookie value (it
 * contains dots) or a user tag (it never does), so the two kinds cannot collide in one cache.
 */
type Verified =
  | { readonly kind: 'cookie'; readonly decoded: AcceptedDeviceCookie }
  | { readonly kind: 'tag'; readonly deviceId: string; readonly userId: string };

/**
 * The device cookie's value: `1.<device UUIDv4>.<user tag or empty>[.<HMAC-SHA256>]`. The user tag is a
 * keyed hash, so the cookie never carries a user ID.
 */
export class DeviceCookieCodec {
  private readonly secrets: readonly string[];
  private readonly tagKeys: readonly string[];
  /** Owned by this codec and its keys, which never change: a rotation makes a new codec, with a new cache. */
  private readonly verified: VerifiedCache<Verified> | undefined;

  /**
   * `secrets` sign the cookie (none: unsigned). `tagKeys` key the user tag; default the secrets, or a random
   * per-process key when there are none. Never the device ID, which the cookie itself shows: a tag keyed by it
   * would let anyone holding the cookie brute-force the user ID. `verifiedCache` remembers successful
   * verifications so that a returning visitor skips the HMAC (the engine passes `cookie.verifiedCache`); default
   * `false`, every value verified.
   */
  constructor(
    secrets: readonly string[],
    tagKeys: readonly string[] = secrets,
    verifiedCache: VerifiedCacheBounds | false = false,
  ) {
    // Copies: a caller mutating its array later must not change keys under a cache filled with the old ones.
    this.secrets = Object.freeze([...secrets]);
    this.tagKeys = Object.freeze(tagKeys.length > 0 ? [...tagKeys] : [processKey()]);
    this.verified = verifiedCache === false ? undefined : new VerifiedCache(verifiedCache);
  }

  /** Verifications the cache holds now (cookie values and user tags); for tests and diagnostics. */
  get cachedVerifications(): number {
    return this.verified?.size ?? 0;
  }

  get signed(): boolean {
    return this.secrets.length > 0;
  }

  encode(state: IdentityState): string {
    const payload = `${VERSION}.${state.deviceId}.${state.userTag ?? ''}`;
    return this.signed ? `${payload}.${hmac(this.secrets[0] as string, payload)}` : payload;
  }

  /**
   * Reads a cookie value. A value that verified before under these secrets is answered from the cache, with the
   * same state and re-sign flag; the returned object is shared then, so it is frozen.
   */
  decode(raw: string): DecodedDeviceCookie {
    const known = this.verified?.get(raw);
    if (known?.kind === 'cookie') return known.decoded;
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
    if (this.verified === undefined) return { ok: true, state, stale: signer > 0 };
    // Kept strings must not be views of this request's Cookie header: see ownCopy.
    const key = ownCopy(raw);
    const [, ownDeviceId, ownTag] = key.split('.') as [string, string, string];
    const decoded: AcceptedDeviceCookie = Object.freeze({
      ok: true,
      state: Object.freeze({ deviceId: ownDeviceId, userTag: ownTag === '' ? undefined : ownTag }),
      stale: signer > 0,
    });
    this.verified.set(key, { kind: 'cookie', decoded }, entryBytes(key.length));
    return decoded;
  }

  /** Keyed hash of the user linked to a device, under the current tag key. */
  tagUser(userId: string, deviceId: string): string {
    return this.tagWith(this.tagKeys[0] as string, userId, deviceId);
  }

  /** True when `userTag` was computed for `userId` on `deviceId` under any configured tag key. */
  isTagOf(userTag: string, userId: string, deviceId: string): boolean {
    const known = this.verified?.get(userTag);
    // Compares the request's own user and device with what the tag verified for: neither is secret.
    if (known?.kind === 'tag' && known.userId === userId && known.deviceId === deviceId) return true;
    for (const key of this.tagKeys) {
      if (safeEqual(this.tagWith(key, userId, deviceId), userTag)) {
        this.verified?.set(
          ownCopy(userTag),
          { kind: 'tag', deviceId: ownCopy(deviceId), userId: ownCopy(userId) },
          entryBytes(userTag.length + userId.length + deviceId.length),
        );
        return true;
      }
    }
    return false;
  }

  private tagWith(key: string, userId: string, deviceId: string): string {
    return hmac(key, `user\0${deviceId}\0${userId}`).slice(0, TAG_LENGTH);
  }
}
