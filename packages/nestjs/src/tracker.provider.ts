import type {
  CurrentIdentity,
  Idstitch,
  PeopleOperations,
  PropertyInput,
  Tracker as RequestTracker,
  TrackEventOptions,
} from '@idstitch/core';
import { createParamDecorator, type ExecutionContext, Inject } from '@nestjs/common';
import {
  currentRequestContext,
  type IdstitchRequest,
  type RequestContext,
  requestContextOf,
} from './request-context.js';

const OUTSIDE_REQUEST =
  'idstitch: Tracker used outside an HTTP request, so there is no visitor to track. In a queue job, cron task ' +
  'or start-up code use `tracker.forUser(userId)` or `tracker.forDevice(deviceId)`. If this is inside a ' +
  'request, check that IdstitchModule.forRoot() is imported and the request came through Nest’s HTTP server.';

/**
 * The idstitch tracker for Nest. Inject it anywhere (`@InjectTracker() tracker: Tracker`), singletons included:
 * each call goes to the tracker of the request being handled, found through AsyncLocalStorage, so nothing
 * becomes request-scoped. Outside a request it throws; use {@link Tracker.forUser} / {@link Tracker.forDevice}
 * there. `@CurrentTracker()` gives the same class bound to one request.
 */
export class Tracker implements RequestTracker {
  /** @internal Made by the module's provider, `@CurrentTracker()` and `getTracker()`. */
  constructor(
    private readonly engine: Idstitch<IdstitchRequest>,
    private readonly bound?: RequestTracker,
  ) {}

  /** True when there is a request to track (always, for a tracker from `@CurrentTracker()`). */
  get inRequest(): boolean {
    return (this.bound ?? currentRequestContext()?.tracker) !== undefined;
  }

  private get current(): RequestTracker {
    const tracker = this.bound ?? currentRequestContext()?.tracker;
    if (!tracker) throw new Error(OUTSIDE_REQUEST);
    return tracker;
  }

  /** A tracker for a known user outside any request (queue jobs, webhooks, cron). */
  forUser(userId: string | number): RequestTracker {
    return this.engine.forUser(userId);
  }

  /** A tracker for an anonymous device outside any request; `identify()` on it links the device to a user. */
  forDevice(deviceId: string): RequestTracker {
    return this.engine.forDevice(deviceId);
  }

  /** Resolves once everything tracked so far has been handed to the sink and the sink has flushed. */
  flush(): Promise<void> {
    return this.engine.flush();
  }

  track(event: string, properties?: PropertyInput, options?: TrackEventOptions): void {
    this.current.track(event, properties, options);
  }

  identify(userId: string | number, traits?: PropertyInput): void {
    this.current.identify(userId, traits);
  }

  alias(alias: string): void {
    this.current.alias(alias);
  }

  merge(distinctIdA: string, distinctIdB: string): void {
    this.current.merge(distinctIdA, distinctIdB);
  }

  reset(): void {
    this.current.reset();
  }

  register(properties: PropertyInput): void {
    this.current.register(properties);
  }

  get people(): PeopleOperations {
    return this.current.people;
  }

  trackCharge(amount: number, properties?: PropertyInput): void {
    this.current.trackCharge(amount, properties);
  }

  group(key: string, id: string | number, traits?: PropertyInput): void {
    this.current.group(key, id, traits);
  }

  get identity(): CurrentIdentity & { distinctId: string | undefined } {
    return this.current.identity;
  }

  get optedOut(): boolean {
    return this.current.optedOut;
  }
}

/** `@Inject(Tracker)`: works where decorator metadata is not emitted (tsx, esbuild, Vite). */
export function InjectTracker(): PropertyDecorator & ParameterDecorator {
  return Inject(Tracker);
}

const bound = new WeakMap<RequestContext, Tracker>();

function boundTracker(context: RequestContext): Tracker {
  let tracker = bound.get(context);
  if (!tracker) {
    tracker = new Tracker(context.engine, context.tracker);
    bound.set(context, tracker);
  }
  return tracker;
}

/** The tracker of a request (Express `req` or Fastify `request`), or undefined when idstitch did not see it. */
export function tryGetTracker(request: object): Tracker | undefined {
  const context = requestContextOf(request);
  return context ? boundTracker(context) : undefined;
}

/** The tracker of a request (Express `req` or Fastify `request`); throws when idstitch did not see it. */
export function getTracker(request: object): Tracker {
  const tracker = tryGetTracker(request);
  if (!tracker) {
    throw new Error(
      'idstitch: no tracker for this request. Import IdstitchModule.forRoot() in your root module and serve ' +
        'the request through @nestjs/platform-express or @nestjs/platform-fastify.',
    );
  }
  return tracker;
}

/** Handler parameter decorator: the current request's {@link Tracker}. */
export const CurrentTracker: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Tracker => getTracker(context.switchToHttp().getRequest()),
);
