import { createIdstitch, type Idstitch, type IdstitchOptions, type Tracker } from '@idstitch/core';
import { handleNodeRequest } from '@idstitch/core/node';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

declare global {
  namespace Express {
    interface Request {
      /** The request's idstitch tracker, set by the `idstitch()` middleware. */
      tracker: Tracker;
    }
  }
}

/** Options of the Express middleware; `resolveUserId` receives the Express request. */
export type IdstitchExpressOptions = IdstitchOptions<Request>;

/** The middleware, with the engine behind it for flushing and background trackers. */
export interface IdstitchMiddleware extends RequestHandler {
  readonly idstitch: Idstitch<Request>;
}

interface SessionLike {
  userId?: unknown;
}

/** passport's `req.user.id`, then express-session's `req.session.userId`. */
export function defaultResolveUserId(request: Request): unknown {
  const user = (request as Request & { user?: { id?: unknown } | null }).user;
  if (user !== undefined && user !== null) return user.id;
  return (request as Request & { session?: SessionLike | null }).session?.userId;
}

/**
 * Express middleware: `app.use(idstitch(options))`. Gives each request `req.tracker` and writes the device
 * cookie just before the headers go out. Options are validated here, at start-up.
 */
export function idstitch(options?: IdstitchExpressOptions): IdstitchMiddleware {
  const engine = createIdstitch(options, { resolveUserId: defaultResolveUserId });
  const middleware = function idstitchMiddleware(
    request: Request,
    response: Response,
    next: NextFunction,
  ): void {
    try {
      const scope = handleNodeRequest(engine, request, response, {
        // Express computes these on every read (trust proxy, X-Forwarded-*): read only when identity needs them.
        get ip() {
          return request.ip;
        },
        get secure() {
          return request.secure;
        },
        path: request.originalUrl ?? request.url,
        get host() {
          return request.host;
        },
      });
      attachTracker(request, scope.tracker);
    } catch (error) {
      engine.options.logger.error(
        `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    next();
  };
  return Object.assign(middleware, { idstitch: engine });
}

/**
 * Trackers by request, shared by every copy of this module (CJS and ESM) through a global slot. `req.tracker` is
 * an accessor on the app's request prototype that reads this map, installed once per prototype: adding an own
 * property to every `req` changes its hidden class on each request, which costs more than the map.
 */
const TRACKERS_SLOT = Symbol.for('idstitch.express.trackers');
const slots = globalThis as { [TRACKERS_SLOT]?: WeakMap<object, Tracker> };
const trackers = slots[TRACKERS_SLOT] ?? new WeakMap<object, Tracker>();
slots[TRACKERS_SLOT] = trackers;

/** The prototype the accessor was last checked on (one per Express app): the common case costs one comparison. */
let lastPrototype: object | undefined;

function attachTracker(request: Request, tracker: Tracker): void {
  trackers.set(request, tracker);
  const prototype = Object.getPrototypeOf(request) as object | null;
  if (prototype === null || Object.hasOwn(request, 'tracker')) {
    (request as { tracker: Tracker }).tracker = tracker;
    return;
  }
  if (prototype === lastPrototype) return;
  lastPrototype = prototype;
  if (Object.getOwnPropertyDescriptor(prototype, 'tracker')?.get === readTracker) return;
  Object.defineProperty(prototype, 'tracker', {
    configurable: true,
    enumerable: false,
    get: readTracker,
    set: writeTracker,
  });
}

function readTracker(this: object): Tracker | undefined {
  return trackers.get(this);
}

function writeTracker(this: object, tracker: Tracker): void {
  trackers.set(this, tracker);
}

/** The request's tracker; throws when the idstitch middleware did not run for this request. */
export function getTracker(request: Request): Tracker {
  const tracker = trackers.get(request) ?? request.tracker;
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Mount `app.use(idstitch(options))` before your routes.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the idstitch middleware did not run for this request. */
export function tryGetTracker(request: Request): Tracker | undefined {
  return trackers.get(request) ?? request.tracker;
}

export type { Tracker } from '@idstitch/core';
