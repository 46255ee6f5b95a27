/**
 * `req.secure` and `req.host` of an Express request (Express 4 and 5, Nest on Express), at the least cost that
 * gives Express's own answers.
 *
 * On Express every `req` has a hidden class of its own (seen with `%HaveSameMap` on Express 5 and Node 20, where
 * plain `http` requests share one), so in V8 each property name read on `req` that Express itself did not read in
 * that request misses the inline caches: a lookup through the descriptors of `req` and its prototypes, then a new
 * cache entry. `req.secure` reads
 * `secure`, `protocol`, `socket`, `app` and `get`, and `req.host` `host` and `get`: most of them names the
 * request path of a plain route never reads.
 *
 * Without an `X-Forwarded-Proto` header, Express's `req.protocol` is the socket's (`https` when it is encrypted)
 * whatever `trust proxy` says; without `X-Forwarded-Host`, `req.host` is the `Host` header. Those two cases are
 * read from `req.headers` and `req.socket`, which Express reads anyway. With either header present, Express's
 * getter decides, trust proxy and all: a client's header never decides more than it did. The shortcut is taken
 * only on requests whose `secure`, `protocol` and `host` are Express's own getters (not redefined by the app on
 * `app.request` or on the request), and, for `host`, not Express 4's (a deprecated alias of `req.hostname`).
 */
import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** What {@link expressSecure} and {@link expressHost} read of an Express request. */
export interface ExpressRequestLike {
  readonly headers: IncomingHttpHeaders;
  readonly socket: unknown;
  readonly secure: boolean;
  readonly host?: string;
}

/** `req.secure` as Express answers it (trust proxy for X-Forwarded-Proto), reading `req.secure` only when needed. */
export function expressSecure(request: ExpressRequestLike): boolean {
  if (request.headers['x-forwarded-proto'] || !ownGetters(request)) return request.secure;
  return Boolean((request.socket as { encrypted?: unknown } | null | undefined)?.encrypted);
}

/** `req.host` as Express 5 answers it (trust proxy for X-Forwarded-Host), reading `req.host` only when needed. */
export function expressHost(request: ExpressRequestLike): string | undefined {
  const headers = request.headers;
  if (headers['x-forwarded-host'] || !ownGetters(request) || !gettersOf(request)?.host) return request.host;
  return headers.host || undefined;
}

/** What was found about a request prototype's getters. */
interface Getters {
  /** `secure` and `protocol` are Express's own (on its request object, right above Node's). */
  readonly secure: boolean;
  /** `host` is Express 5's: the Host header, or X-Forwarded-Host through a trusted proxy. */
  readonly host: boolean;
}

const NONE: Getters = { secure: false, host: false };
const seen = new WeakMap<object, Getters>();
let lastPrototype: object | undefined;
let lastGetters: Getters = NONE;

/** False when the request itself redefines one of the getters (a middleware that forces `req.secure`). */
function ownGetters(request: ExpressRequestLike): boolean {
  const getters = gettersOf(request);
  if (getters === undefined || !getters.secure) return false;
  return (
    !Object.hasOwn(request, 'secure') &&
    !Object.hasOwn(request, 'protocol') &&
    !Object.hasOwn(request, 'host')
  );
}

function gettersOf(request: ExpressRequestLike): Getters | undefined {
  const prototype = Object.getPrototypeOf(request) as object | null;
  if (prototype === null) return undefined;
  if (prototype === lastPrototype) return lastGetters;
  let getters = seen.get(prototype);
  if (getters === undefined) {
    getters = examine(prototype);
    seen.set(prototype, getters);
  }
  lastPrototype = prototype;
  lastGetters = getters;
  return getters;
}

/**
 * Walks from `prototype` to Node's `IncomingMessage.prototype`: Express's request object is the one right above
 * Node's, and it must be the first on the way to define `secure`, `protocol` and `host` (an app's
 * `app.request` or a sub-app's may define its own, which then decides).
 */
function examine(prototype: object): Getters {
  let base: object | undefined;
  let current: object | null = prototype;
  const definers = new Map<string, object>();
  while (current !== null && current !== IncomingMessage.prototype) {
    for (const key of ['secure', 'protocol', 'host']) {
      if (!definers.has(key) && Object.hasOwn(current, key)) definers.set(key, current);
    }
    base = current;
    current = Object.getPrototypeOf(current) as object | null;
  }
  if (current === null || base === undefined) return NONE;
  const isGetter = (key: string) =>
    definers.get(key) === base && typeof Object.getOwnPropertyDescriptor(base, key)?.get === 'function';
  const secure = isGetter('secure') && isGetter('protocol');
  // Express 4's request has `param()`, removed in 5; its `host` is a deprecated alias of `hostname`.
  const express5 = typeof (base as { param?: unknown }).param !== 'function';
  return { secure, host: secure && express5 && isGetter('host') };
}
