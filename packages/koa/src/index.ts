import {
  type CookieWrite,
  createIdstitch,
  type Idstitch,
  type IdstitchOptions,
  type RequestPort,
  type Tracker,
} from '@idstitch/core';
import { type NodeRequestFactReader, NodeRequestPort, openNodeRequest } from '@idstitch/core/node';
import type { Context, Middleware, Next } from 'koa';

declare module 'koa' {
  interface DefaultState {
    /** The request's idstitch tracker, set by the `idstitch()` middleware. */
    tracker: Tracker;
  }
}

/** Options of the Koa middleware; `resolveUserId` receives the Koa context. */
export type IdstitchKoaOptions = IdstitchOptions<Context>;

/** What the middleware puts on `ctx.state`, for apps that type their state explicitly (`new Koa<IdstitchState>()`). */
export interface IdstitchState {
  tracker: Tracker;
}

/** The middleware, with the engine behind it for flushing and background trackers. */
export interface IdstitchMiddleware extends Middleware {
  readonly idstitch: Idstitch<Context>;
}

/** The part of Koa's `ctx.cookies` (the `cookies` package) that holds the app's keygrip. */
interface SigningCookies {
  keys?: { index(data: string, digest: string): number };
}

/** koa-passport's `ctx.state.user.id`, then koa-session's `ctx.session.userId`. */
export function defaultResolveUserId(ctx: Context): unknown {
  const user = (ctx.state as { user?: { id?: unknown } | null }).user;
  if (user !== undefined && user !== null) return user.id;
  return (ctx as Context & { session?: { userId?: unknown } | null }).session?.userId;
}

/** Koa computes these on read (`app.proxy`, X-Forwarded-*): the port reads them only when needed. */
const KOA_FACTS: NodeRequestFactReader<Context> = {
  ip: (ctx) => ctx.ip,
  secure: (ctx) => ctx.secure,
  path: (ctx) => ctx.originalUrl,
};

interface DeviceCookieCheck {
  verified: string[];
  rejected: number;
  stale: boolean;
}

/**
 * The request port, reading the device cookie as Koa would: when the app has `app.keys`, only values whose
 * `.sig` cookie verifies count, and one verified with a retired key is re-signed.
 */
class SignedKoaRequestPort extends NodeRequestPort<Context> {
  private readonly checked = new Map<string, DeviceCookieCheck>();

  constructor(
    ctx: Context,
    private readonly keys: NonNullable<SigningCookies['keys']>,
    private readonly deviceCookies: ReadonlySet<string>,
  ) {
    super(ctx, KOA_FACTS);
  }

  override cookies(name: string): string[] {
    return this.deviceCookies.has(name) ? this.device(name).verified : super.cookies(name);
  }

  isCookieStale(name: string): boolean {
    return this.deviceCookies.has(name) && this.device(name).stale;
  }

  rejectedCookies(name: string): number {
    return this.deviceCookies.has(name) ? this.device(name).rejected : 0;
  }

  private device(deviceCookie: string): DeviceCookieCheck {
    const known = this.checked.get(deviceCookie);
    if (known) return known;
    const values = super.cookies(deviceCookie);
    const signatures = super.cookies(`${deviceCookie}.sig`);
    let stale = false;
    const verified = values.filter((value) => {
      // `cookies` signs `name=value` as written; ctx.cookies.set was given the URI-encoded value.
      const data = `${deviceCookie}=${encodeURIComponent(value)}`;
      let key = -1;
      for (const signature of signatures) {
        const index = this.keys.index(data, signature);
        if (index >= 0 && (key < 0 || index < key)) key = index;
      }
      if (key > 0) stale = true;
      return key >= 0;
    });
    const result = { verified, rejected: values.length - verified.length, stale };
    this.checked.set(deviceCookie, result);
    return result;
  }
}

function koaRequestPort(ctx: Context, deviceCookies: ReadonlySet<string>): RequestPort<Context> {
  const keys = (ctx.cookies as SigningCookies).keys;
  return keys ? new SignedKoaRequestPort(ctx, keys, deviceCookies) : new NodeRequestPort(ctx, KOA_FACTS);
}

/** Writes through `ctx.cookies`, so `app.keys` signs the device cookie as it signs the app's own. */
function writeKoaCookies(ctx: Context, deviceCookies: ReadonlySet<string>, writes: CookieWrite[]): void {
  for (const { name, value, attributes } of writes) {
    ctx.cookies.set(name, encodeURIComponent(value), {
      path: attributes.path,
      domain: attributes.domain,
      maxAge: attributes.maxAge * 1000,
      httpOnly: attributes.httpOnly,
      secure: attributes.secure,
      sameSite: attributes.sameSite,
      overwrite: true,
      // mixpanel-browser rewrites its own cookie, so only ours can carry a signature.
      ...(deviceCookies.has(name) ? {} : { signed: false }),
    });
  }
}

/**
 * Koa middleware: `app.use(idstitch(options))`. Gives each request `ctx.state.tracker` and settles the device
 * cookie after downstream middleware, when Koa writes the response headers — also when downstream threw and
 * Koa's error handler cleared the headers. Options are validated here, at start-up.
 */
export function idstitch(options?: IdstitchKoaOptions): IdstitchMiddleware {
  const engine = createIdstitch(options, { resolveUserId: defaultResolveUserId });
  // The plain name and, on HTTPS, the __Host- one: both are ours, both signed by app.keys.
  const { name, hostName } = engine.options.cookie;
  const deviceCookies: ReadonlySet<string> = new Set(hostName ? [name, hostName] : [name]);
  const middleware = function idstitchMiddleware(ctx: Context, next: Next): Promise<void> {
    try {
      // Koa's response is Node's own, so this is the per-response `writeHead` wrapper (see the core's header hook).
      const scope = openNodeRequest(engine, koaRequestPort(ctx, deviceCookies), ctx.res, (writes) =>
        writeKoaCookies(ctx, deviceCookies, writes),
      );
      ctx.state.tracker = scope.tracker;
    } catch (error) {
      engine.options.logger.error(
        `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    return next();
  };
  return Object.assign(middleware, { idstitch: engine });
}

/** The request's tracker; throws when the idstitch middleware did not run for this request. */
export function getTracker(ctx: Context): Tracker {
  const tracker = tryGetTracker(ctx);
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Mount `app.use(idstitch(options))` before your routes.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the idstitch middleware did not run for this request. */
export function tryGetTracker(ctx: Context): Tracker | undefined {
  return (ctx.state as Partial<IdstitchState> | undefined)?.tracker;
}

export type { Tracker } from '@idstitch/core';
