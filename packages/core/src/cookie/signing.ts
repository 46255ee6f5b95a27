import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * The HMAC-SHA256 seam of the request path. Identity is reconciled synchronously (inside `track()`), so the
 * signer is synchronous on every runtime: Node's `node:crypto` where the runtime has it (Node, Bun, Deno),
 * reached through `process.getBuiltinModule` so that no bundle for a web runtime sees a `node:` import;
 * elsewhere (Cloudflare workerd, browsers) an audited pure-JS HMAC (@noble/hashes). Web Crypto's
 * `crypto.subtle` is asynchronous only, which would make `track()` asynchronous, so it is not used here.
 */
export interface Signer {
  /** HMAC-SHA256 of `value` under `key`, base64url without padding. */
  hmac(key: string, value: string): string;
  /** Constant-time comparison (false when the lengths differ). */
  equal(a: string, b: string): boolean;
}

/** A `KeyObject`, opaque here. */
type NodeSecretKey = object & { readonly type: 'secret' };

interface NodeCrypto {
  createHmac(
    algorithm: string,
    key: string | NodeSecretKey,
  ): { update(value: string): { digest(encoding: 'base64url'): string } };
  createSecretKey?(key: Uint8Array): NodeSecretKey;
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

/** Keys are the few configured secrets and tag keys; the bound only guards against a caller passing many. */
const MAX_KEY_OBJECTS = 64;

interface NodeBuffer {
  from(value: string): Uint8Array;
}

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The pure-JS signer: no Node built-in, same output as Node's. */
export const portableSigner: Signer = {
  hmac: (key, value) => base64url(nobleHmac(sha256, encoder.encode(key), encoder.encode(value))),
  equal(a, b) {
    if (a.length !== b.length) return false;
    let difference = 0;
    for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
    return difference === 0;
  },
};

function nodeSigner(): Signer | undefined {
  const host = (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process;
  const crypto = host?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  const buffer = (globalThis as { Buffer?: NodeBuffer }).Buffer;
  if (typeof crypto?.createHmac !== 'function' || buffer === undefined) return undefined;
  // A KeyObject made once per key: createHmac with a string key converts and imports it on every call
  // (about 25.8k -> 23.9k instructions per HMAC, callgrind, Node 20, after a full warm-up).
  const keyObjects = new Map<string, NodeSecretKey | string>();
  const keyFor = (key: string): NodeSecretKey | string => {
    let keyObject = keyObjects.get(key);
    if (keyObject === undefined) {
      if (keyObjects.size >= MAX_KEY_OBJECTS) keyObjects.clear();
      // Same bytes as createHmac's own conversion of a string key (UTF-8).
      keyObject =
        typeof crypto.createSecretKey === 'function' ? crypto.createSecretKey(buffer.from(key)) : key;
      keyObjects.set(key, keyObject);
    }
    return keyObject;
  };
  return {
    hmac: (key, value) => crypto.createHmac('sha256', keyFor(key)).update(value).digest('base64url'),
    equal(a, b) {
      const left = buffer.from(a);
      const right = buffer.from(b);
      return left.length === right.length && crypto.timingSafeEqual(left, right);
    },
  };
}

/** The signer of this runtime, chosen once. */
export const signer: Signer = nodeSigner() ?? portableSigner;

/** HMAC-SHA256 of `value`, base64url without padding. */
export function hmac(secret: string, value: string): string {
  return signer.hmac(secret, value);
}

/** Constant-time comparison of two base64url strings (false when their lengths differ). */
export function safeEqual(a: string, b: string): boolean {
  return signer.equal(a, b);
}

/**
 * Which secret signed `value`: 0 for the current one, a higher index for a retired one that must be
 * re-signed, or -1 when none did.
 */
export function verifyingSecret(secrets: readonly string[], value: string, signature: string): number {
  for (let i = 0; i < secrets.length; i++) {
    if (safeEqual(hmac(secrets[i] as string, value), signature)) return i;
  }
  return -1;
}
