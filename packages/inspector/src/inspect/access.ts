import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import { IdstitchOptionsError } from '@idstitch/core';

/** Who may open the inspector. In production it is refused unless enabled and protected. */
export interface InspectorAccessOptions {
  /**
   * Serve the inspector when `NODE_ENV` is `production`. Default `false`: creating it there throws. Even when
   * `true`, a `token` or an `authorize` check is required, because the page shows every user's events.
   */
  allowInProduction?: boolean;
  /**
   * A shared secret of at least 16 characters. Requests must carry it as `Authorization: Bearer <token>`,
   * or open the page once with `?token=<token>`: that sets an HttpOnly cookie and redirects without it.
   */
  token?: string;
  /** Your own check (e.g. an admin session); return `true` to let the request in. Runs on every request. */
  authorize?: (request: IncomingMessage) => boolean | Promise<boolean>;
}

/** Decides one request: `true` to serve it; otherwise the response has been written (401/403/303). */
export type AccessCheck = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;

const COOKIE = 'idstitch_inspector';
const MIN_TOKEN = 16;

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

const LOOPBACK_HOST = /^(?:localhost|127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})|\[::1\])(?::\d{1,5})?$/i;

/**
 * Whether a `Host` header names this machine's loopback: `localhost`, `127.x.y.z` or `[::1]`, with an
 * optional port. A page that reaches a loopback server through DNS rebinding still sends its own host name.
 */
export function isLoopbackHost(header: string | undefined): boolean {
  const match = LOOPBACK_HOST.exec(header ?? '');
  return match?.slice(1).every((octet) => octet === undefined || Number(octet) <= 255) ?? false;
}

/** Whether a socket's remote address is loopback: 127.0.0.0/8, `::1`, or `::ffff:127.x.y.z`. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || (isIPv4(v4) && v4.startsWith('127.'));
}

/**
 * Headers a relay adds for the client it forwards. A tunnel or reverse proxy on this machine (ngrok,
 * cloudflared, nginx, a dev-server proxy) connects from loopback and often rewrites `Host` to the upstream's,
 * so the loopback checks alone would let its clients (anyone it is reachable by) in.
 */
const RELAY_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-real-ip',
  'via',
  'cf-connecting-ip',
];

/** Whether the request says it was relayed for another client (see {@link RELAY_HEADERS}). */
export function isRelayed(request: IncomingMessage): boolean {
  return RELAY_HEADERS.some((name) => request.headers[name] !== undefined);
}

/** The path the app mounted the inspector at, from Express's `originalUrl` (absent: mounted at the root). */
export function mountPath(request: IncomingMessage): string {
  const original = (request as { originalUrl?: string }).originalUrl ?? request.url ?? '/';
  const full = original.split('?')[0] ?? '/';
  const own = (request.url ?? '/').split('?')[0] ?? '/';
  const mount = own !== '/' && full.endsWith(own) ? full.slice(0, -own.length) : full.replace(/\/$/, '');
  return mount === '' ? '/' : mount;
}

/**
 * Checks the options once, at start-up, and returns the per-request check.
 * @throws IdstitchOptionsError in production unless `allowInProduction` and a `token` or `authorize` are given.
 */
export function accessCheck(
  options: InspectorAccessOptions,
  env: string | undefined = process.env.NODE_ENV,
): AccessCheck {
  const { allowInProduction = false, token, authorize } = options;
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_TOKEN)) {
    throw new IdstitchOptionsError(
      'token',
      `must be a string of at least ${MIN_TOKEN} characters`,
      'Use a long random secret, e.g. from `openssl rand -hex 24`',
    );
  }
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new IdstitchOptionsError('authorize', 'must be a function', 'Pass `(request) => boolean`');
  }
  if (env === 'production') {
    if (allowInProduction !== true) {
      throw new IdstitchOptionsError(
        'allowInProduction',
        'is not set, and NODE_ENV is production: the inspector shows every user’s events',
        'Mount the inspector only in development, or pass `allowInProduction: true` with a `token` or `authorize` check',
      );
    }
    if (token === undefined && authorize === undefined) {
      throw new IdstitchOptionsError(
        'token',
        'is missing: in production the inspector must be protected',
        'Pass `token` (a long secret) or `authorize: (request) => isAdmin(request)`',
      );
    }
  }
  const expected = token === undefined ? undefined : digest(token);
  const cookie = expected?.toString('hex');

  const open = token === undefined && authorize === undefined;

  return async function checkInspectorAccess(request, response) {
    // Unprotected (development): this machine only. The client must be loopback (not another machine
    // reaching an app listening on 0.0.0.0) and so must the host it names (not a web page that rebinds its
    // own name to 127.0.0.1 and reads the inspector from the developer's browser), and it must not have been
    // relayed by a local proxy or tunnel for a client elsewhere.
    if (
      open &&
      (!isLoopbackAddress(request.socket?.remoteAddress) ||
        !isLoopbackHost(request.headers.host) ||
        isRelayed(request))
    ) {
      response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      response.end(
        'idstitch inspector: without a token it serves this machine only, as http://localhost or ' +
          'http://127.0.0.1, not through a proxy or tunnel. Pass `token` or `authorize` to open it from elsewhere.\n',
      );
      return false;
    }
    if (expected !== undefined) {
      const url = new URL(request.url ?? '/', 'http://inspector.invalid');
      const given = url.searchParams.get('token');
      const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
      const fromCookie = cookieValue(request.headers.cookie, COOKIE);
      const ok =
        (given !== null && sameDigest(digest(given), expected)) ||
        (bearer !== undefined && sameDigest(digest(bearer), expected)) ||
        (fromCookie !== undefined && sameDigest(Buffer.from(fromCookie, 'hex'), expected));
      if (!ok) {
        response.writeHead(401, {
          'content-type': 'text/plain; charset=utf-8',
          'www-authenticate': 'Bearer realm="idstitch inspector"',
          'cache-control': 'no-store',
        });
        response.end('idstitch inspector: open this page with ?token=<your inspector token>.\n');
        return false;
      }
      if (given !== null) {
        // Trade the token in the address for a cookie, so it does not stay in the history or in Referer.
        url.searchParams.delete('token');
        const original = (request as { originalUrl?: string }).originalUrl ?? request.url ?? '/';
        const path = original.split('?')[0] ?? '/';
        const cookiePath = mountPath(request);
        response.writeHead(303, {
          location: `${path}${url.search}`,
          'set-cookie': `${COOKIE}=${cookie}; Path=${cookiePath}; HttpOnly; SameSite=Strict${
            request.socket && 'encrypted' in request.socket ? '; Secure' : ''
          }`,
          'cache-control': 'no-store',
        });
        response.end();
        return false;
      }
    }
    if (authorize !== undefined) {
      let allowed = false;
      try {
        allowed = (await authorize(request)) === true;
      } catch {
        allowed = false;
      }
      if (!allowed) {
        response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        response.end('idstitch inspector: not allowed.\n');
        return false;
      }
    }
    return true;
  };
}
