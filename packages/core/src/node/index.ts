/**
 * Helpers for adapters on Node's `http` request and response (Express, Nest on Express, plain `http`).
 * Kept out of the main entry so the core itself stays free of any server API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import onHeaders from 'on-headers';
import { cookieValues, serializeCookie } from '../cookie/cookie-header.js';
import { IdstitchError } from '../errors.js';
import type { Idstitch, RequestScope } from '../idstitch.js';
import type { RequestPort } from '../request-port.js';

/** What an adapter knows about a Node request beyond `IncomingMessage` (its framework's trust-proxy view). */
export interface NodeRequestFacts {
  ip: string | undefined;
  secure: boolean;
  path: string;
}

/** Maps a Node request onto the core's request port. */
export function nodeRequestPort<Req extends IncomingMessage>(
  request: Req,
  facts: NodeRequestFacts,
): RequestPort<Req> {
  return {
    request,
    cookies: (name) => cookieValues(request.headers.cookie, name),
    header: (name) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    },
    ip: facts.ip,
    secure: facts.secure,
    path: facts.path,
  };
}

/**
 * Appends the scope's cookies to `Set-Cookie` just before the headers are written, so a login or logout inside
 * the handler is reflected. Keeps the app's own cookies, replaces any earlier value of ours: at most one
 * `Set-Cookie` per name.
 */
export function writeCookiesBeforeHeaders(
  response: ServerResponse,
  scope: RequestScope,
  report: (error: IdstitchError) => void,
): void {
  onHeaders(response, function idstitchSetCookie(this: ServerResponse) {
    try {
      const writes = scope.settle();
      if (writes.length === 0) return;
      const names = new Set(writes.map((write) => `${write.name}=`));
      const existing = this.getHeader('set-cookie');
      const kept = (
        existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
      ).filter((line) => ![...names].some((name) => line.startsWith(name)));
      this.setHeader('set-cookie', [...kept, ...writes.map(serializeCookie)]);
    } catch (error) {
      report(
        new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
      );
    }
  });
}

/** Starts a request on a Node server: builds the port, opens the scope, registers the cookie write. */
export function handleNodeRequest<Req extends IncomingMessage>(
  engine: Idstitch<Req>,
  request: Req,
  response: ServerResponse,
  facts: NodeRequestFacts,
): RequestScope {
  const scope = engine.handle(nodeRequestPort(request, facts));
  writeCookiesBeforeHeaders(response, scope, engine.options.report);
  return scope;
}

export type { CookieAttributes, CookieWrite } from '../cookie/cookie-header.js';
export { cookieValues, serializeCookie } from '../cookie/cookie-header.js';
