import { randomUUID } from 'node:crypto';
import { DeviceCookieCodec } from '@idstitch/core';
import { COOKIE_SECRET, USER_AGENT } from '../lib/fixtures.js';
import { HANDWRITTEN_DEVICE_ID, USER_ID } from '../overhead/variants.js';

/**
 * `returning`: a signed-in visitor whose signed device cookie is already linked to the user (idstitch's and the
 * hand-written recipe's cookies both sent). `new`: a first, anonymous visit, no cookie, no user: the server
 * mints a device ID and sets its cookie.
 */
export const VISITORS = ['returning', 'new'] as const;
export type Visitor = (typeof VISITORS)[number];

/** The headers of a signed-in, returning visitor: a signed device cookie already linked to the user. */
export function returningVisitorHeaders(): Record<string, string> {
  const codec = new DeviceCookieCodec([COOKIE_SECRET]);
  const deviceId = randomUUID();
  const cookie = codec.encode({ deviceId, userTag: codec.tagUser(USER_ID, deviceId) });
  return {
    cookie: `idstitch_device=${cookie}; device_id=${HANDWRITTEN_DEVICE_ID}`,
    'x-user-id': USER_ID,
    'user-agent': USER_AGENT,
  };
}

export function visitorRequestHeaders(visitor: Visitor): Record<string, string> {
  return visitor === 'returning' ? returningVisitorHeaders() : { 'user-agent': USER_AGENT };
}
