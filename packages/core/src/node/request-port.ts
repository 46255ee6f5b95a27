import type { IncomingHttpHeaders } from 'node:http';
import { cookieValues } from '../cookie/cookie-header.js';
import type { RequestPort } from '../request-port.js';

/**
 * A Node request (`IncomingMessage`, Express's `req`) or a framework object that carries its headers (Koa's `ctx`,
 * Fastify's `request`). It is what `resolveUserId` receives.
 */
export interface NodeRequestLike {
  readonly headers: IncomingHttpHeaders;
}

/**
 * How an adapter reads the facts its framework resolves (trust proxy, X-Forwarded-*): one object per adapter,
 * made once, whose functions {@link NodeRequestPort} calls only when the core asks for a fact.
 */
export interface NodeRequestFactReader<Req> {
  /** The client IP (read only with `geolocate`). */
  ip(request: Req): string | undefined;
  /** True over HTTPS as the framework judges it. */
  secure(request: Req): boolean;
  /** Path with query string, as requested (Express's `originalUrl`, not the mount-relative `url`). */
  path(request: Req): string;
  /** The requested host behind proxies; leave out to use the Host header. */
  host?(request: Req): string | undefined;
}

const IP = 1;
const SECURE = 2;
const HOST = 4;

/**
 * The core's request port over a Node request. Facts the framework computes on every read (Express's `req.ip`
 * and `req.secure` run the trust-proxy function; Fastify's `request.ip` parses X-Forwarded-For) are read only
 * when the core needs them, once each: a returning visitor's request never resolves its IP unless `geolocate` is
 * on. Subclass it to read cookies the framework verifies itself (Koa with `app.keys`).
 */
export class NodeRequestPort<Req extends NodeRequestLike> implements RequestPort<Req> {
  /**
   * The request's headers, read from the request once. On Express every `req` has a hidden class of its own
   * (seen on Express 5 and Node 20; plain `http` requests share one), so a read of `req` can miss V8's caches.
   */
  private readonly headers: IncomingHttpHeaders;
  private known = 0;
  private ipValue: string | undefined = undefined;
  private secureValue = false;
  private hostValue: string | undefined = undefined;

  constructor(
    readonly request: Req,
    private readonly facts: NodeRequestFactReader<Req>,
  ) {
    this.headers = request.headers;
  }

  cookies(name: string): string[] {
    return cookieValues(this.headers.cookie, name);
  }

  header(name: string): string | undefined {
    const value = this.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }

  get ip(): string | undefined {
    if ((this.known & IP) === 0) {
      this.ipValue = this.facts.ip(this.request);
      this.known |= IP;
    }
    return this.ipValue;
  }

  get secure(): boolean {
    if ((this.known & SECURE) === 0) {
      this.secureValue = this.facts.secure(this.request);
      this.known |= SECURE;
    }
    return this.secureValue;
  }

  get host(): string | undefined {
    if ((this.known & HOST) === 0) {
      this.hostValue = this.facts.host?.(this.request);
      this.known |= HOST;
    }
    return this.hostValue;
  }

  get path(): string {
    return this.facts.path(this.request);
  }
}
