/**
 * Mounting on the two HTTP platforms Nest ships. Nest hands middleware Express's `req` on one and Node's raw
 * request on the other, while guards set `request.user` on Fastify's own request, so each platform gets the hook
 * that sees the request guards see. Both then use the core's Node helpers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CookieWrite, type Idstitch, IdstitchError } from '@idstitch/core';
import {
  expressSecure,
  mergeSetCookie,
  type NodeRequestFactReader,
  NodeRequestPort,
  openNodeRequest,
} from '@idstitch/core/node';
import {
  enterRequestContext,
  type IdstitchRequest,
  type RequestContext,
  requestContextOf,
} from './request-context.js';

/** What idstitch uses of Nest's `AbstractHttpAdapter`. */
export interface HttpAdapterLike {
  getType(): string;
  getInstance<T>(): T;
}

interface ExpressRequestLike extends IncomingMessage {
  user?: IdstitchRequest['user'];
  ip?: string;
  secure: boolean;
  originalUrl?: string;
}

interface ExpressAppLike {
  use(handler: (request: ExpressRequestLike, response: ServerResponse, next: () => void) => void): unknown;
}

interface FastifyRequestLike extends IdstitchRequest {
  raw: IncomingMessage;
  ip: string;
  protocol: 'http' | 'https';
  url: string;
}

interface FastifyReplyLike {
  getHeader(name: string): unknown;
  removeHeader(name: string): unknown;
  header(name: string, value: string[]): unknown;
}

type FastifyOnRequest = (request: FastifyRequestLike, reply: unknown, done: () => void) => void;
type FastifyOnSend = (
  request: FastifyRequestLike,
  reply: FastifyReplyLike,
  payload: unknown,
  done: (error: null, payload: unknown) => void,
) => void;

interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: FastifyOnRequest): unknown;
  addHook(name: 'onSend', hook: FastifyOnSend): unknown;
}

// Facts each platform computes on read (trust proxy): the port reads them only when the core needs them.
const EXPRESS_FACTS: NodeRequestFactReader<ExpressRequestLike> = {
  ip: (request) => request.ip,
  // From the socket and headers when no X-Forwarded-Proto could change Express's answer (see expressSecure).
  secure: expressSecure,
  path: (request) => request.originalUrl ?? request.url ?? '/',
};
const FASTIFY_FACTS: NodeRequestFactReader<FastifyRequestLike> = {
  ip: (request) => request.ip,
  secure: (request) => request.protocol === 'https',
  path: (request) => request.url,
};

function notTracked(engine: Idstitch<IdstitchRequest>, error: unknown): undefined {
  engine.options.logger.error(
    `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
  );
  return undefined;
}

/**
 * Express: an app-level middleware, registered before Nest's router and every module's middleware. The cookie
 * is settled by the core's header hook (one `writeHead` on Express's response prototype).
 */
function mountExpress(app: ExpressAppLike, engine: Idstitch<IdstitchRequest>): void {
  app.use(function idstitchMiddleware(request, response, next) {
    let context: RequestContext | undefined;
    try {
      const scope = openNodeRequest(engine, new NodeRequestPort(request, EXPRESS_FACTS), response);
      context = { tracker: scope.tracker, engine, scope: undefined };
    } catch (error) {
      context = notTracked(engine, error);
    }
    // Express's `req` is the Node request itself: no `raw` to look for.
    if (context) enterRequestContext(request, context, next, request);
    else next();
  });
}

/**
 * Fastify: an `onRequest` hook, which gets Fastify's request (where guards put `user`) and runs the rest of the
 * lifecycle inside the context (Fastify carries it across body parsing itself), and one `onSend` hook, which
 * settles the cookie just before the headers go out, error replies included, as @fastify/cookie does.
 */
function mountFastify(fastify: FastifyInstanceLike, engine: Idstitch<IdstitchRequest>): void {
  fastify.addHook('onRequest', function idstitchOnRequest(request, _reply, done) {
    let context: RequestContext | undefined;
    try {
      const scope = engine.handle(new NodeRequestPort(request, FASTIFY_FACTS));
      context = { tracker: scope.tracker, engine, scope };
    } catch (error) {
      context = notTracked(engine, error);
    }
    if (context) enterRequestContext(request, context, done);
    else done();
  });
  fastify.addHook('onSend', function idstitchOnSend(request, reply, payload, done) {
    const scope = requestContextOf(request)?.scope;
    if (scope) {
      try {
        const writes = scope.settle();
        if (writes.length > 0) appendSetCookie(reply, writes);
      } catch (error) {
        engine.options.report(
          new IdstitchError('cookie_write_failed', 'could not write the identity cookie', { cause: error }),
        );
      }
    }
    done(null, payload);
  });
}

/** Appended to every cookie the app or @fastify/cookie set; an earlier value of ours is replaced. */
function appendSetCookie(reply: FastifyReplyLike, writes: readonly CookieWrite[]): void {
  const lines = mergeSetCookie(reply.getHeader('set-cookie'), writes);
  // `reply.header('set-cookie', …)` appends to what is there: remove first, so ours is not there twice.
  reply.removeHeader('set-cookie');
  reply.header('set-cookie', lines);
}

/** Detects the platform and delegates; an application context without HTTP mounts nothing. */
export function mountIdstitch(adapter: HttpAdapterLike | undefined, engine: Idstitch<IdstitchRequest>): void {
  if (!adapter) return;
  const type = adapter.getType();
  if (type === 'express') mountExpress(adapter.getInstance<ExpressAppLike>(), engine);
  else if (type === 'fastify') mountFastify(adapter.getInstance<FastifyInstanceLike>(), engine);
  else {
    engine.options.logger.warn(
      `idstitch: HTTP platform "${type}" is not supported, so requests are not tracked. ` +
        'Use @nestjs/platform-express or @nestjs/platform-fastify.',
    );
  }
}
