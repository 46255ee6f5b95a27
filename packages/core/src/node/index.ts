/**
 * Helpers for adapters on Node's `http` request and response (Express, Koa, Nest on Express or Fastify, plain `http`).
 * Kept out of the main entry so the core itself stays free of any server API.
 */
import type { ServerResponse } from 'node:http';
import { type CookieWrite, serializeCookie } from '../cookie/cookie-header.js';
import { IdstitchError } from '../errors.js';
import type { Idstitch, RequestScope } from '../idstitch.js';
import type { RequestPort } from '../request-port.js';
import { beforeHeaders, type HeaderListener } from './header-hook.js';
import { type NodeRequestLike, NodeRequestPort } from './request-port.js';

/** What an adapter knows about a Node request beyond `IncomingMessage` (its framework's trust-proxy view). */
export interface NodeRequestFacts {
  ip: string | undefined;
  secure: boolean;
  path: string;
  /** The requested host as the framework resolves it behind proxies; optional (default: the Host header). */
  host?: string;
}

/**
 * Maps a Node request onto the core's request port from facts already known (or getters on `facts`).
 * Adapters use {@link NodeRequestPort}, which reads each fact only when the core needs it.
 */
export function nodeRequestPort<Req extends NodeRequestLike>(
  request: Req,
  facts: NodeRequestFacts,
): RequestPort<Req> {
  return new NodeRequestPort(request, {
    ip: () => facts.ip,
    secure: () => facts.secure,
    host: () => facts.host,
    path: () => facts.path,
  });
}

/**
 * `existing` (a `Set-Cookie` header as Node or a framework holds it: absent, one line or several) with `writes`
 * appended, and any earlier value of ours left out: the app's cookies stay, at most one `Set-Cookie` per name of ours.
 */
export function mergeSetCookie(existing: unknown, writes: readonly CookieWrite[]): string[] {
  const lines: string[] = [];
  if (Array.isArray(existing)) {
    for (const line of existing) if (!isOneOf(String(line), writes)) lines.push(String(line));
  } else if (existing !== undefined && existing !== null) {
    const line = String(existing);
    if (!isOneOf(line, writes)) lines.push(line);
  }
  for (const write of writes) lines.push(serializeCookie(write));
  return lines;
}

function isOneOf(line: string, writes: readonly CookieWrite[]): boolean {
  for (const write of writes) {
    if (line.length > write.name.length && line[write.name.length] === '=' && line.startsWith(write.name)) {
      return true;
    }
  }
  return false;
}

/**
 * Appends cookies to `Set-Cookie`, keeping the app's own and replacing any earlier value of ours: at most one
 * `Set-Cookie` per name.
 */
export function appendSetCookie(response: ServerResponse, writes: readonly CookieWrite[]): void {
  if (writes.length === 0) return;
  response.setHeader('set-cookie', mergeSetCookie(response.getHeader('set-cookie'), writes));
}

/** Writes a request's cookies to its response; a framework with its own cookie API passes one that uses it. */
export type CookieWriter = (writes: CookieWrite[], response: ServerResponse) => void;

/** The default {@link CookieWriter}: {@link appendSetCookie}. */
const appendToSetCookie: CookieWriter = (writes, response) => appendSetCookie(response, writes);

/** Settles a scope when its response's headers are about to go out. One object per request, no closure. */
class SettleBeforeHeaders implements HeaderListener {
  constructor(
    private readonly scope: RequestScope,
    private readonly report: (error: IdstitchError) => void,
    private readonly write: CookieWriter,
  ) {}

  beforeHeaders(response: ServerResponse): void {
    try {
      const writes = this.scope.settle();
      if (writes.length > 0) this.write(writes, response);
    } catch (error) {
      this.report(
        new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
      );
    }
  }
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
  write: CookieWriter = appendToSetCookie,
): void {
  beforeHeaders(response, new SettleBeforeHeaders(scope, report, write));
}

/**
 * Starts a request on a Node server: opens the scope for `port` (a {@link NodeRequestPort}, so facts are read
 * only when needed) and settles it just before `response` writes its headers, writing the cookies with `write`
 * (default: appended to `Set-Cookie`).
 */
export function openNodeRequest<Req>(
  engine: Idstitch<Req>,
  port: RequestPort<Req>,
  response: ServerResponse,
  write: CookieWriter = appendToSetCookie,
): RequestScope {
  const scope = engine.handle(port);
  beforeHeaders(response, new SettleBeforeHeaders(scope, engine.options.report, write));
  return scope;
}

/** Starts a request from facts already known: {@link openNodeRequest} over {@link nodeRequestPort}. */
export function handleNodeRequest<Req extends NodeRequestLike>(
  engine: Idstitch<Req>,
  request: Req,
  response: ServerResponse,
  facts: NodeRequestFacts,
): RequestScope {
  return openNodeRequest(engine, nodeRequestPort(request, facts), response);
}

export type { CookieAttributes, CookieWrite } from '../cookie/cookie-header.js';
export { cookieValues, serializeCookie } from '../cookie/cookie-header.js';
export { type ExpressRequestLike, expressHost, expressSecure } from './express-facts.js';
export { beforeHeaders, type HeaderListener } from './header-hook.js';
export { defineAboveNode } from './prototype-property.js';
export { type NodeRequestFactReader, type NodeRequestLike, NodeRequestPort } from './request-port.js';
