import {
  type CookieWrite,
  createIdstitch,
  type Idstitch,
  IdstitchError,
  type IdstitchOptions,
  type RequestScope,
  type Tracker,
} from '@idstitch/core';
import { mergeSetCookie, type NodeRequestFactReader, NodeRequestPort } from '@idstitch/core/node';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's idstitch tracker, set by the plugin in `onRequest`. `null` on routes that opted out with
     * `config: { idstitch: false }`; {@link getTracker} throws there instead.
     */
    tracker: Tracker;
  }
  interface FastifyInstance {
    /** The engine behind the plugin, for flushing and background trackers (`forUser`, `forDevice`). */
    idstitch: Idstitch<FastifyRequest>;
  }
  interface FastifyContextConfig {
    /** `false` leaves the route untracked: no tracker, no device cookie. */
    idstitch?: boolean;
  }
}

/** Options of the Fastify plugin; `resolveUserId` receives the Fastify request. */
export type IdstitchFastifyOptions = IdstitchOptions<FastifyRequest>;

/** Fastify's own registration options, which reach the plugin's options object but are not idstitch's. */
const REGISTRATION_KEYS = new Set(['prefix', 'logLevel', 'logSerializers']);

const kScope = Symbol('idstitch.scope');

interface ScopedRequest {
  [kScope]: RequestScope | null;
}

interface UserLike {
  id?: unknown;
  sub?: unknown;
}

interface SessionLike {
  userId?: unknown;
  get?(key: string): unknown;
}

/**
 * `request.user.id` (@fastify/passport), or the JWT subject `request.user.sub` (@fastify/jwt after
 * `request.jwtVerify()`), then `request.session.userId` (@fastify/session; `session.get('userId')` with
 * @fastify/secure-session).
 */
export function defaultResolveUserId(request: FastifyRequest): unknown {
  const user = (request as FastifyRequest & { user?: UserLike | null }).user;
  if (user !== undefined && user !== null) return user.id ?? user.sub;
  const session = (request as FastifyRequest & { session?: SessionLike | null }).session;
  if (session === undefined || session === null) return undefined;
  return typeof session.get === 'function' ? session.get('userId') : session.userId;
}

/** Fastify parses X-Forwarded-For (trust proxy) on every read of `request.ip`: read only when needed. */
const FASTIFY_FACTS: NodeRequestFactReader<FastifyRequest> = {
  ip: (request) => request.ip,
  secure: (request) => request.protocol === 'https',
  path: (request) => request.url,
};

/**
 * Adds the cookies to the reply's `Set-Cookie`, keeping every other cookie the app or @fastify/cookie set and
 * replacing an earlier value of ours: at most one `Set-Cookie` per name.
 */
function appendSetCookie(reply: FastifyReply, writes: readonly CookieWrite[]): void {
  const lines = mergeSetCookie(reply.getHeader('set-cookie'), writes);
  // `reply.header('set-cookie', …)` appends to what is there: remove first, so ours is not there twice.
  reply.removeHeader('set-cookie');
  reply.header('set-cookie', lines);
}

const plugin: FastifyPluginCallback<IdstitchFastifyOptions> = function idstitchPlugin(
  fastify: FastifyInstance,
  registered,
  done,
) {
  const options = Object.fromEntries(
    Object.entries(registered ?? {}).filter(([key]) => !REGISTRATION_KEYS.has(key)),
  ) as IdstitchFastifyOptions;
  let engine: Idstitch<FastifyRequest>;
  try {
    engine = createIdstitch(options, { resolveUserId: defaultResolveUserId });
  } catch (error) {
    // Fails `app.register()`/`app.ready()` with the option's message, as Fastify reports plugin errors.
    return done(error as Error);
  }
  const { logger, report } = engine.options;

  fastify.decorate('idstitch', engine);
  // Fastify's documented way for per-request data: declare the shape once, set it in a hook.
  // `null` until onRequest sets it (and on opted-out routes); typed as Tracker so handlers need no check.
  fastify.decorateRequest('tracker', null as unknown as Tracker);
  fastify.decorateRequest(kScope, null);

  fastify.addHook('onRequest', function idstitchOnRequest(request, _reply, next) {
    if (request.routeOptions.config.idstitch === false) return next();
    try {
      const scope = engine.handle(new NodeRequestPort(request, FASTIFY_FACTS));
      (request as FastifyRequest & ScopedRequest)[kScope] = scope;
      request.tracker = scope.tracker;
    } catch (error) {
      logger.error(
        `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    next();
  });

  // onSend runs just before the headers go out, error replies included, so a login or logout in the handler
  // is reflected in the cookie.
  fastify.addHook('onSend', function idstitchOnSend(request, reply, payload, next) {
    const scope = (request as FastifyRequest & ScopedRequest)[kScope];
    if (scope) {
      try {
        const writes = scope.settle();
        if (writes.length > 0) appendSetCookie(reply, writes);
      } catch (error) {
        report(
          new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
        );
      }
    }
    next(null, payload);
  });

  fastify.addHook('onClose', function idstitchOnClose(_instance, next) {
    engine.close().then(
      () => next(),
      () => next(),
    );
  });
  done();
};

/**
 * The Fastify plugin: `await app.register(idstitch, options)`. Gives each request `request.tracker`, writes
 * the device cookie in `onSend`, and flushes the sink when the app closes. Wrapped in `fastify-plugin`, so its
 * hooks cover every route of the instance it is registered on. Options are validated at registration.
 */
export const idstitch = fp(plugin, { fastify: '5.x', name: '@idstitch/fastify' });
export default idstitch;

/** The request's tracker; throws when the plugin is not registered or the route opted out. */
export function getTracker(request: FastifyRequest): Tracker {
  const tracker = tryGetTracker(request);
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Register `app.register(idstitch, options)` before your routes, ' +
        'and leave out `config: { idstitch: false }` on routes that track.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the plugin is not registered or the route opted out. */
export function tryGetTracker(request: FastifyRequest): Tracker | undefined {
  return (request as Partial<Pick<FastifyRequest, 'tracker'>>).tracker ?? undefined;
}

export type { Tracker } from '@idstitch/core';
