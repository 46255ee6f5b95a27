import { IncomingMessage } from 'node:http';
import { createIdstitch, type Idstitch, type IdstitchOptions, type Tracker } from '@idstitch/core';
import {
  defineAboveNode,
  expressHost,
  expressSecure,
  type NodeRequestFactReader,
  NodeRequestPort,
  openNodeRequest,
} from '@idstitch/core/node';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

declare global {
  namespace Express {
    interface Request {
      /**
       * The request's idstitch tracker, set by the `idstitch()` middleware; `undefined` on requests it did not
       * handle. Read-only: assigning to it on a tracked request is ignored.
       */
      readonly tracker: Tracker;
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
 * Express computes these on every read (trust proxy, X-Forwarded-*): the port reads them only when needed, and
 * `secure` and `host` from the headers and the socket when no forwarded header could change the answer.
 */
const EXPRESS_FACTS: NodeRequestFactReader<Request> = {
  ip: (request) => request.ip,
  secure: expressSecure,
  path: (request) => request.originalUrl ?? request.url,
  host: expressHost,
};

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
      const scope = openNodeRequest(engine, new NodeRequestPort(request, EXPRESS_FACTS), response);
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
 * Trackers by request, and the `tracker` accessor that reads them, shared by every copy of this module (CJS and
 * ESM, two installed versions) through a global slot. The accessor sits on Express's base request prototype
 * (the one every app's `app.request` and every sub-app's inherits from), installed once: an own property on
 * every `req` would change its hidden class on each request, which costs more than the map.
 */
interface TrackerSlot {
  readonly trackers: WeakMap<object, Tracker>;
  readonly accessor: { get(this: object): Tracker | undefined; set(this: object, value: unknown): void };
  /** Request prototypes examined: whether `tracker` read through them reaches the accessor. */
  readonly prototypes: WeakMap<object, boolean>;
}

// @2: the slot holds this object; @1 (`idstitch.express.trackers`) held the bare WeakMap.
const SLOT = Symbol.for('@idstitch/express:trackers@2');
const slots = globalThis as typeof globalThis & { [SLOT]?: TrackerSlot };
slots[SLOT] ??= createSlot();
const slot: TrackerSlot = slots[SLOT];

function createSlot(): TrackerSlot {
  const trackers = new WeakMap<object, Tracker>();
  return {
    trackers,
    accessor: {
      get: function tracker(this: object) {
        return trackers.get(this);
      },
      // Ignored on a request idstitch tracks: neither app code nor a library can swap its tracker. On any
      // other request it behaves as a plain property, so an app's own `req.tracker` keeps working there.
      set: function tracker(this: object, value: unknown) {
        if (trackers.has(this)) return;
        Object.defineProperty(this, 'tracker', {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
    },
    prototypes: new WeakMap(),
  };
}

/** The request prototype seen last, known to reach the accessor: the common case costs one comparison. */
let lastPrototype: object | undefined;

function attachTracker(request: Request, tracker: Tracker): void {
  slot.trackers.set(request, tracker);
  const prototype = Object.getPrototypeOf(request) as object | null;
  if (Object.hasOwn(request, 'tracker')) {
    const own = Object.getOwnPropertyDescriptor(request, 'tracker')!;
    if (own.get === slot.accessor.get || !own.configurable) return;
    // A value assigned before this middleware ran (the setter made it a plain property) gives way to ours.
    delete (request as { tracker?: unknown }).tracker;
  } else if (prototype === lastPrototype) return;
  if (prototype !== null && reachesAccessor(prototype)) {
    lastPrototype = prototype;
    return;
  }
  // Not an Express request (a test double, plain `http`) or a prototype we may not change: on the request itself.
  Object.defineProperty(request, 'tracker', { ...slot.accessor, enumerable: false, configurable: true });
}

function reachesAccessor(prototype: object): boolean {
  let reaches = slot.prototypes.get(prototype);
  if (reaches === undefined) {
    reaches = installAccessor(prototype);
    slot.prototypes.set(prototype, reaches);
  }
  return reaches;
}

/**
 * Defines the accessor on the prototype just above Node's `IncomingMessage.prototype` (express's `req`), unless
 * the chain does not reach Node's, has no prototype of its own, or something else defines `tracker` on the way.
 * `Object.prototype.tracker` (pollution) is further up than the accessor, so it never shows through.
 */
function installAccessor(prototype: object): boolean {
  return defineAboveNode(
    prototype,
    IncomingMessage.prototype,
    'tracker',
    slot.accessor,
    (own) => own.get === slot.accessor.get,
  );
}

/** The request's tracker; throws when the idstitch middleware did not run for this request. */
export function getTracker(request: Request): Tracker {
  const tracker = slot.trackers.get(request);
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Mount `app.use(idstitch(options))` before your routes.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the idstitch middleware did not run for this request. */
export function tryGetTracker(request: Request): Tracker | undefined {
  return slot.trackers.get(request);
}

export type { Tracker } from '@idstitch/core';
