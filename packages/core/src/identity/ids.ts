import { validate as isUuid, version as uuidVersion, v4 as uuidv4 } from 'uuid';

/** A fresh anonymous device ID: a UUIDv4, the format Mixpanel's Original ID Merge requires of `$anon_id`. */
export function newDeviceId(): string {
  return uuidv4();
}

/** A fresh `$insert_id`: 36 characters of hex digits and `-`, inside Mixpanel's rules. */
export function newInsertId(): string {
  return uuidv4();
}

/** True for a UUID of version 4 (what `$identify` will merge). */
export function isUuidV4(id: string): boolean {
  return isUuid(id) && uuidVersion(id) === 4;
}

/**
 * Device IDs from outside (mixpanel-browser's cookie, a native app's header) are opaque to us; older
 * mixpanel-browser releases minted non-UUID IDs. Accept what is safe to echo into events and cookies.
 */
const FOREIGN_DEVICE_ID = /^[A-Za-z0-9-]{8,64}$/;

export function isAcceptableDeviceId(id: unknown): id is string {
  return (
    typeof id === 'string' && FOREIGN_DEVICE_ID.test(id) && id !== '00000000-0000-0000-0000-000000000000'
  );
}
