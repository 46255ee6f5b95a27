/**
 * Helpers for adapters on Node's `http` request and response (Express, Koa, Nest on Express or Fastify, plain `http`).
 * Kept out of the main entry so the core itself stays free of any server API.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import onHeaders from 'on-headers';
import { type CookieWrite, cookieValues, serializeCookie } from '../cookie/cookie-header.js';
import { IdstitchError } from '../errors.js';
import type { Idstitch, RequestScope } from '../idstitch.js';
import type { RequestPort } from '../request-port.js';

/** What an adapter knows about a Node request beyond `IncomingMessage` (its framework's trust-proxy view). */
export interface NodeRequestFacts {
  ip: string | undefined;
  secure: boolean;
  path: string;
  /** The requested host as the framework resolves it behind proxies; optional (default: the Host header). */
  host?: string;
}

/**
 * A Node request (`IncomingMessage`, Express's `req`) or a framework object that carries its headers (Koa's `ctx`,
 * Fastify's `request`). It is what `resolveUserId` receives.
 */
export interface NodeRequestLike {
  readonly headers: IncomingHttpHeaders;
}

/** Maps a Node request onto the core's request port. */
export function nodeRequestPort<Req extends NodeRequestLike>(
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
    // Read through, not copied: an adapter may pass getters (Express's `req.ip` and `req.secure` parse
    // X-Forwarded-* under trust proxy), and the core reads them only when a decision needs them.
    get ip() {
      return facts.ip;
    },
    get secure() {
      return facts.secure;
    },
    get host() {
      return facts.host;
    },
    path: facts.path,
  };
}

/**
 * Appends cookies to `Set-Cookie`, keeping the app's own and replacing any earlier value of ours: at most one
 * `Set-Cookie` per name.
 */
export function appendSetCookie(response: ServerResponse, writes: readonly CookieWrite[]): void {
  if (writes.length === 0) return;
  const names = new Set(writes.map((write) => `${write.name}=`));
  const existing = response.getHeader('set-cookie');
  const kept = (existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]).filter(
    (line) => ![...names].some((name) => line.startsWith(name)),
  );
  response.setHeader('set-cookie', [...kept, ...writes.map(serializeCookie)]);
}

/**
 * Settles the scope just before the headers are written, so a login or logout inside the handler is reflected,
 * and hands its cookies to `write`: by default {@link appendSetCookie}; a framework with its own cookie API
 * (Koa's `ctx.cookies`, which signs with `app.keys`) passes a writer that uses it. This runs after the
 * framework's error handling too (Koa's clears every header before writing its error response). A failing
 * write is reported, never thrown.
 */
export function writeCookiesBeforeHeaders(
  response: ServerResponse,
  scope: RequestScope,
  report: (error: IdstitchError) => void,
  write: (writes: CookieWrite[], response: ServerResponse) => void = (writes, target) =>
    appendSetCookie(target, writes),
): void {
  onHeaders(response, function idstitchSetCookie(this: ServerResponse) {
    try {
      const writes = scope.settle();
      if (writes.length > 0) write(writes, this);
    } catch (error) {
      report(
        new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
      );
    }
  });
}

/** Starts a request on a Node server: builds the port, opens the scope, registers the cookie write. */
export function handleNodeRequest<Req extends NodeRequestLike>(
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
