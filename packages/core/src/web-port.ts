import { cookieValues } from './cookie/cookie-header.js';
import type { RequestPort } from './request-port.js';

/** What a Web-standard adapter knows about a request beyond its `Request` (its framework's view). */
export interface WebRequestFacts {
  /** The client IP, when the runtime or a trusted proxy header gives one. */
  ip: string | undefined;
}

/**
 * Maps a Web-standard `Request` (Hono, workerd, Deno, Bun) onto the core's request port. `secure` follows the
 * URL's scheme; `context` is what `resolveUserId` and `consent.isOptedOut` receive (Hono's `c`).
 */
export function webRequestPort<Ctx>(
  request: Request,
  context: Ctx,
  facts: WebRequestFacts,
): RequestPort<Ctx> {
  const url = new URL(request.url);
  const cookie = request.headers.get('cookie') ?? undefined;
  return {
    request: context,
    cookies: (name) => cookieValues(cookie, name),
    header: (name) => request.headers.get(name) ?? undefined,
    secure: url.protocol === 'https:',
    ip: facts.ip,
    // With the query, as the Node adapters pass it: UTM parameters and `$current_url` are read from it (the
    // core redacts or strips it per `requestProperties.query`).
    path: `${url.pathname}${url.search}`,
  };
}
