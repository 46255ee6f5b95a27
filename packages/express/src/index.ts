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
        ip: request.ip,
        secure: request.secure,
        path: request.originalUrl ?? request.url,
        host: request.host,
      });
      request.tracker = scope.tracker;
    } catch (error) {
      engine.options.logger.error(
        `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    next();
  };
  return Object.assign(middleware, { idstitch: engine });
}

/** The request's tracker; throws when the idstitch middleware did not run for this request. */
export function getTracker(request: Request): Tracker {
  const tracker = request.tracker;
  if (!tracker)
    throw new Error(
      'idstitch: no tracker on this request. Mount `app.use(idstitch(options))` before your routes.',
    );
  return tracker;
}

/** The request's tracker, or undefined when the idstitch middleware did not run for this request. */
export function tryGetTracker(request: Request): Tracker | undefined {
  return request.tracker;
}

export type { Tracker } from '@idstitch/core';
