import {
  createIdstitch,
  type Idstitch,
  IdstitchError,
  type IdstitchOptions,
  IdstitchOptionsError,
  type Tracker,
  webRequestPort,
} from '@idstitch/core/web';
import type { Context, MiddlewareHandler } from 'hono';
import { setCookie } from 'hono/cookie';

declare module 'hono' {
  interface ContextVariableMap {
    /** The request's idstitch tracker, set by the `idstitch()` middleware. */
    tracker: Tracker;
  }
}

/** What the middleware puts in the context, for apps that type their variables: `new Hono<{ Variables: IdstitchVariables }>()`. */
export interface IdstitchVariables {
  tracker: Tracker;
}

/** Options of the Hono middleware; `resolveUserId` receives Hono's context `c`. */
export interface IdstitchHonoOptions extends IdstitchOptions<Context> {
  /**
   * The client IP, sent to Mixpanel only with `geolocate: true`. Default: the connection's address where the
   * runtime gives one to Hono (`@hono/node-server`, `Bun.serve`, `Deno.serve`) — the same address Hono's
   * `getConnInfo` reads — and none on Workers. Headers such as `X-Forwarded-For` or `CF-Connecting-IP` are never
   * read unless you say so here, as Express's `trust proxy` does: `clientIp: (c) => c.req.header('cf-connecting-ip')`
   * on Cloudflare, or your proxy's header behind one proxy you run.
   */
  clientIp?: (c: Context) => string | undefined;
}

/** The middleware, with the engine behind it for flushing and background trackers. */
export type IdstitchMiddleware = MiddlewareHandler & { readonly idstitch: Idstitch<Context> };

/** `c.get('user').id` (an auth middleware's user), then the JWT subject `c.get('jwtPayload').sub` (hono/jwt). */
export function defaultResolveUserId(c: Context): unknown {
  const variables = c as unknown as { get(key: string): unknown };
  const user = variables.get('user') as { id?: unknown } | null | undefined;
  if (user !== undefined && user !== null) return user.id;
  return (variables.get('jwtPayload') as { sub?: unknown } | undefined)?.sub;
}

/**
 * The connection's address as the runtime hands it to `app.fetch` in `c.env`, in the shapes Hono's per-runtime
 * `getConnInfo` helpers read: `@hono/node-server` passes `{ incoming }`, `Bun.serve` its server (`requestIP`),
 * `Deno.serve` its handler info (`remoteAddr`). Workers pass their bindings: no address there.
 */
export function connectionAddress(c: Context): string | undefined {
  const env = c.env as
    | {
        incoming?: { socket?: { remoteAddress?: string } };
        server?: { incoming?: { socket?: { remoteAddress?: string } } };
        requestIP?(request: Request): { address?: string } | null;
        remoteAddr?: { hostname?: string };
      }
    | undefined;
  if (env === undefined || env === null || typeof env !== 'object') return undefined;
  const incoming = env.incoming ?? env.server?.incoming;
  if (incoming) return incoming.socket?.remoteAddress;
  if (typeof env.requestIP === 'function') return env.requestIP(c.req.raw)?.address ?? undefined;
  return env.remoteAddr?.hostname;
}

/** `c.executionCtx.waitUntil` on Workers and Vercel; Hono's getter throws where there is none (Node, Bun, Deno). */
function waitUntil(c: Context): ((promise: Promise<unknown>) => void) | undefined {
  try {
    const context = c.executionCtx;
    return typeof context?.waitUntil === 'function' ? context.waitUntil.bind(context) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Hono middleware: `app.use(idstitch(options))`. Gives each request `c.get('tracker')`, settles the device
 * cookie after the handler (error responses included) through `hono/cookie`, and on runtimes that end a
 * request's life at the response (Workers, Vercel) hands the flush to `c.executionCtx.waitUntil`. Uses only
 * `@idstitch/core/web`, so it runs on Node, Bun, Deno and workerd. Options are validated here, at start-up.
 */
export function idstitch(options?: IdstitchHonoOptions): IdstitchMiddleware {
  const { clientIp = connectionAddress, ...engineOptions } = options ?? {};
  if (typeof clientIp !== 'function') {
    throw new IdstitchOptionsError(
      'clientIp',
      `must be a function, got ${typeof clientIp}`,
      "Pass `(c) => c.req.header('cf-connecting-ip')` or leave it out.",
    );
  }
  const engine = createIdstitch(options === undefined ? undefined : engineOptions, {
    resolveUserId: defaultResolveUserId,
  });
  const { logger, report, geolocate } = engine.options;
  const middleware: MiddlewareHandler = async function idstitchMiddleware(c, next) {
    let scope: ReturnType<typeof engine.handle> | undefined;
    try {
      scope = engine.handle(webRequestPort(c.req.raw, c, { ip: geolocate ? clientIp(c) : undefined }));
      c.set('tracker', scope.tracker);
    } catch (error) {
      logger.error(
        `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    await next();
    if (!scope) return;
    try {
      for (const { name, value, attributes } of scope.settle()) {
        setCookie(c, name, value, {
          path: attributes.path,
          domain: attributes.domain,
          maxAge: attributes.maxAge,
          httpOnly: attributes.httpOnly,
          secure: attributes.secure,
          sameSite: attributes.sameSite,
        });
      }
    } catch (error) {
      report(
        new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
      );
    }
    const keepAlive = waitUntil(c);
    if (keepAlive) keepAlive(engine.flush().catch(() => {}));
  };
  return Object.assign(middleware, { idstitch: engine });
}

/** The request's tracker; throws when the idstitch middleware did not run for this request. */
export function getTracker(c: Context): Tracker {
  const tracker = tryGetTracker(c);
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Mount `app.use(idstitch(options))` before your routes.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the idstitch middleware did not run for this request. */
export function tryGetTracker(c: Context): Tracker | undefined {
  return (c as unknown as { get(key: string): Tracker | undefined }).get('tracker');
}

export type { Tracker } from '@idstitch/core/web';
