/** Process-wide slots, shared by every copy of idstitch loaded in this process (CommonJS and ESM alike). */
const KEY_SLOT = Symbol.for('idstitch.processKey');
const WARNED_SLOT = Symbol.for('idstitch.warnedProcessKey');

type Slots = { [KEY_SLOT]?: string; [WARNED_SLOT]?: boolean };

/**
 * A random key made once per process: it signs device cookies in development when no secret is configured,
 * and keys user tags when an app opted out of signing. Nobody outside the process can compute it, so a cookie
 * never reveals a user ID by brute force; it changes when the process restarts.
 */
export function processKey(): string {
  const slots = globalThis as Slots;
  // Web Crypto and btoa, so the portable entry (`@idstitch/core/web`) needs no Node built-in.
  slots[KEY_SLOT] ??= btoa(String.fromCharCode(...globalThis.crypto.getRandomValues(new Uint8Array(32))))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
  return slots[KEY_SLOT];
}

/** True the first time it is called in this process: for warnings that must be logged once, not per engine. */
export function firstProcessKeyWarning(): boolean {
  const slots = globalThis as Slots;
  if (slots[WARNED_SLOT]) return false;
  slots[WARNED_SLOT] = true;
  return true;
}
