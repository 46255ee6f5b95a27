/**
 * Helpers for testing code that uses idstitch, without a server: a `MemorySink` to assert on, and a fake
 * request to drive the engine directly.
 */
import { cookieValues } from '../cookie/cookie-header.js';
import type { RequestPort } from '../request-port.js';

export { MemorySink } from '../sinks/memory-sink.js';

/** What a fake request carries. Cookie values are given raw, as a browser would send them. */
export interface FakeRequestInit<Req> {
  /** Handed to `resolveUserId` and `consent.isOptedOut`. */
  request?: Req;
  /** A raw `Cookie` header (use this to test duplicates), or name → value pairs. */
  cookies?: string | Record<string, string>;
  /** Header name (any case) → value. */
  headers?: Record<string, string>;
  secure?: boolean;
  ip?: string;
  path?: string;
}

/** A {@link RequestPort} for `Idstitch.handle()` in unit tests. */
export function fakeRequestPort<Req = Record<string, unknown>>(
  init: FakeRequestInit<Req> = {},
): RequestPort<Req> {
  const header =
    typeof init.cookies === 'string'
      ? init.cookies
      : Object.entries(init.cookies ?? {})
          .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
          .join('; ');
  const headers = new Map(
    Object.entries(init.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return {
    request: (init.request ?? {}) as Req,
    cookies: (name) => cookieValues(header, name),
    header: (name) => headers.get(name),
    secure: init.secure ?? false,
    ip: init.ip,
    path: init.path ?? '/',
  };
}
