import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import type { Idstitch, RequestScope, Tracker as RequestTracker } from '@idstitch/core';

/**
 * The request your `resolveUserId` receives: Express's `req` on `@nestjs/platform-express`, Fastify's `request`
 * on `@nestjs/platform-fastify` — the object guards see, so `user` is there once passport's `AuthGuard` ran.
 */
export interface IdstitchRequest {
  readonly headers: IncomingHttpHeaders;
  /** The signed-in user, as guards (passport's `AuthGuard`) set it. */
  user?: { id?: unknown } | null;
}

/** What idstitch knows about the request being handled. */
export interface RequestContext {
  readonly tracker: RequestTracker;
  readonly engine: Idstitch<IdstitchRequest>;
  /** On Fastify, the scope its `onSend` hook settles; on Express the core's header hook holds it. */
  readonly scope: RequestScope | undefined;
}

interface ContextSlot {
  readonly storage: AsyncLocalStorage<RequestContext>;
  /** Keyed by the Node request (`request.raw ?? request`), for code that holds the request but lost the ALS. */
  readonly byRequest: WeakMap<object, RequestContext>;
}

// One process-wide slot, so an ESM and a CJS copy of this package (or two installed versions) share the context.
const SLOT = Symbol.for('@idstitch/nestjs:request-context@1');
const global = globalThis as typeof globalThis & { [SLOT]?: ContextSlot };
global[SLOT] ??= { storage: new AsyncLocalStorage(), byRequest: new WeakMap() };
const slot: ContextSlot = global[SLOT];

/** The Node request behind a platform request: Fastify keeps it at `raw`, Express's `req` is it. */
function nodeRequest(request: object): object {
  return (request as { raw?: object }).raw ?? request;
}

/**
 * Remembers the request's context and runs `next` inside it. `node` is the Node request when the caller knows it
 * (Express's `req` is one): looking for a `raw` property on Express's `req`, which has a hidden class of its own
 * per request, is a miss in V8's caches on every request.
 */
export function enterRequestContext(
  request: object,
  context: RequestContext,
  next: () => void,
  node: object = nodeRequest(request),
): void {
  slot.byRequest.set(node, context);
  slot.storage.run(context, next);
}

/** The context of the request being handled, through AsyncLocalStorage. */
export function currentRequestContext(): RequestContext | undefined {
  return slot.storage.getStore();
}

/** The context of a given request (Express `req`, Fastify `request` or its `raw`). */
export function requestContextOf(request: object | undefined): RequestContext | undefined {
  return request === undefined || request === null ? undefined : slot.byRequest.get(nodeRequest(request));
}
