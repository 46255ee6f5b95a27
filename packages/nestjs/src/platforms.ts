/**
 * Mounting on the two HTTP platforms Nest ships. Nest hands middleware Express's `req` on one and Node's raw
 * request on the other, while guards set `request.user` on Fastify's own request, so each platform gets the hook
 * that sees the request guards see. Both then use the core's Node helpers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Idstitch } from '@idstitch/core';
import { handleNodeRequest, type NodeRequestFacts } from '@idstitch/core/node';
import { enterRequestContext, type IdstitchRequest, type RequestContext } from './request-context.js';

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

type FastifyHook = (request: FastifyRequestLike, reply: { raw: ServerResponse }, done: () => void) => void;

interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: FastifyHook): unknown;
}

function open(
  engine: Idstitch<IdstitchRequest>,
  request: IdstitchRequest,
  response: ServerResponse,
  facts: NodeRequestFacts,
): RequestContext | undefined {
  try {
    return { tracker: handleNodeRequest(engine, request, response, facts).tracker, engine };
  } catch (error) {
    engine.options.logger.error(
      `idstitch: request not tracked: ${error instanceof Error ? error.message : String(error)}`,
    );
    return undefined;
  }
}

/** Express: an app-level middleware, registered before Nest's router and every module's middleware. */
function mountExpress(app: ExpressAppLike, engine: Idstitch<IdstitchRequest>): void {
  app.use(function idstitchMiddleware(request, response, next) {
    const context = open(engine, request, response, {
      ip: request.ip,
      secure: request.secure,
      path: request.originalUrl ?? request.url ?? '/',
    });
    if (context) enterRequestContext(request, context, next);
    else next();
  });
}

/**
 * Fastify: an `onRequest` hook, which gets Fastify's request (where guards put `user`) and runs the rest of the
 * lifecycle inside the context; Fastify carries it across body parsing itself.
 */
function mountFastify(fastify: FastifyInstanceLike, engine: Idstitch<IdstitchRequest>): void {
  fastify.addHook('onRequest', function idstitchOnRequest(request, reply, done) {
    const context = open(engine, request, reply.raw, {
      ip: request.ip,
      secure: request.protocol === 'https',
      path: request.url,
    });
    if (context) enterRequestContext(request, context, done);
    else done();
  });
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
