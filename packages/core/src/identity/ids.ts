const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** A fresh anonymous device ID: a UUIDv4, the format Mixpanel's Original ID Merge requires of `$anon_id`. */
export function newDeviceId(): string {
  // Web Crypto's randomUUID: Node 20, Bun, Deno and workerd all have it, no Node built-in needed.
  return globalThis.crypto.randomUUID();
}

/** A fresh `$insert_id`: 36 characters of hex digits and `-`, inside Mixpanel's rules. */
export function newInsertId(): string {
  return globalThis.crypto.randomUUID();
}

/** True for a UUID of version 4 (what `$identify` will merge). */
export function isUuidV4(id: string): boolean {
  return UUID_V4.test(id);
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
