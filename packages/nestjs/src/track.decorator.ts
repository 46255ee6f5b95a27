import { IdstitchError, type PropertyInput } from '@idstitch/core';
import { SetMetadata } from '@nestjs/common';
import { defer, isObservable, type Observable, tap } from 'rxjs';
import { currentRequestContext, type RequestContext } from './request-context.js';

/** Metadata key `@Track()` writes on the method, for tools that list tracked methods (`reflector.get`). */
export const TRACK_METADATA = 'idstitch:track';

/** How `@Track()` reports a failure. */
export interface TrackErrorsOptions {
  /** Event name for failures. Default: `"<event> Failed"`, so funnels never count a failure as the success. */
  event?: string;
  /**
   * Also send `error_message`. Default `false`: messages can carry personal data (emails, IDs in URLs);
   * only the error's class (`error`) and an HTTP status (`error_status`) are sent.
   */
  includeMessage?: boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: the defaults let `properties` read arguments and results untyped
export interface TrackOptions<Args extends unknown[] = any[], Result = any> {
  /**
   * Event properties from the method's arguments and its result: the resolved value of a promise, the last
   * value of an observable. Runs after the method succeeded; if it throws, the event is tracked without them and
   * the error reported to `onError`.
   */
  properties?: (args: Args, result: Result) => PropertyInput | undefined;
  /** Also track failures (see {@link TrackErrorsOptions}). Default `false`: a failure tracks nothing. */
  trackErrors?: boolean | TrackErrorsOptions;
}

/** What `@Track()` stores under {@link TRACK_METADATA}. */
export interface TrackMetadata {
  event: string;
  options: TrackOptions;
}

// Reflect metadata API, loaded by @nestjs/common (reflect-metadata); typed here to avoid a dependency on it.
const metadata = Reflect as unknown as {
  getOwnMetadataKeys(target: object): unknown[];
  getOwnMetadata(key: unknown, target: object): unknown;
  defineMetadata(key: unknown, value: unknown, target: object): void;
};

function errorProperties(error: unknown, includeMessage: boolean): PropertyInput {
  const properties: PropertyInput = {
    error: typeof error === 'object' && error !== null ? (error.constructor?.name ?? 'Object') : typeof error,
  };
  const status = (error as { getStatus?: () => unknown } | null)?.getStatus;
  if (typeof status === 'function') properties.error_status = status.call(error);
  if (includeMessage && error instanceof Error) properties.error_message = error.message;
  return properties;
}

function trackSuccess(context: RequestContext, meta: TrackMetadata, args: unknown[], result: unknown): void {
  let properties: PropertyInput | undefined;
  if (meta.options.properties) {
    try {
      properties = meta.options.properties(args, result) ?? undefined;
    } catch (error) {
      context.engine.options.report(
        new IdstitchError('hook_failed', `@Track('${meta.event}') properties threw; tracked without them`, {
          cause: error,
        }),
      );
    }
  }
  context.tracker.track(meta.event, properties);
}

function trackFailure(context: RequestContext, meta: TrackMetadata, error: unknown): void {
  const option = meta.options.trackErrors;
  if (!option) return;
  const { event = `${meta.event} Failed`, includeMessage = false } = option === true ? {} : option;
  context.tracker.track(event, errorProperties(error, includeMessage));
}

/** Calls the method and tracks its outcome on the request it was called in, whatever it returns. */
function callTracked(meta: TrackMetadata, self: unknown, method: Function, args: unknown[]): unknown {
  // Captured now: an observable may complete, or a promise settle, outside the request's async context.
  const context = currentRequestContext();
  if (!context) return method.apply(self, args);
  let result: unknown;
  try {
    result = method.apply(self, args);
  } catch (error) {
    trackFailure(context, meta, error);
    throw error;
  }
  if (isObservable(result)) {
    return defer(() => {
      let last: unknown;
      return (result as Observable<unknown>).pipe(
        tap({
          next: (value) => {
            last = value;
          },
          error: (error: unknown) => trackFailure(context, meta, error),
          complete: () => trackSuccess(context, meta, args, last),
        }),
      );
    });
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
    return Promise.resolve(result).then(
      (value) => {
        trackSuccess(context, meta, args, value);
        return value;
      },
      (error: unknown) => {
        trackFailure(context, meta, error);
        throw error;
      },
    );
  }
  trackSuccess(context, meta, args, result);
  return result;
}

/**
 * Tracks `event` on the current request's tracker each time the method succeeds: after a returned promise
 * resolves, after a returned observable completes, or right away for a plain value. Works on controller handlers
 * and on provider methods called during a request; called outside a request, the method runs untracked.
 *
 * ```ts
 * @Post('checkout')
 * @Track('Checkout Completed', { properties: ([dto], order) => ({ plan: dto.plan, total: order.total }) })
 * checkout(@Body() dto: CheckoutDto) { ... }
 * ```
 *
 * The method is wrapped where it is declared (an interceptor never sees a handler's arguments), keeping every
 * metadata key other decorators put on it, so routes without `@Track()` run no idstitch code at all.
 */
// biome-ignore lint/suspicious/noExplicitAny: the defaults let `properties` read arguments and results untyped
export function Track<Args extends unknown[] = any[], Result = any>(
  event: string,
  options: TrackOptions<Args, Result> = {},
): MethodDecorator {
  if (typeof event !== 'string' || event.trim() === '') {
    throw new TypeError("idstitch: @Track() needs an event name, e.g. @Track('Signed Up').");
  }
  const meta: TrackMetadata = { event, options: options as TrackOptions };
  return (target, key, descriptor) => {
    const method = descriptor.value as unknown;
    if (typeof method !== 'function') {
      throw new TypeError(`idstitch: @Track('${event}') goes on a method; ${String(key)} is not one.`);
    }
    const tracked = function (this: unknown, ...args: unknown[]): unknown {
      return callTracked(meta, this, method, args);
    };
    // Decorators below @Track() (@Get(), @UseGuards()...) wrote their metadata on the original function.
    for (const metadataKey of metadata.getOwnMetadataKeys(method)) {
      metadata.defineMetadata(metadataKey, metadata.getOwnMetadata(metadataKey, method), tracked);
    }
    Object.defineProperty(tracked, 'name', { value: method.name });
    Object.defineProperty(tracked, 'length', { value: method.length });
    descriptor.value = tracked as typeof descriptor.value;
    SetMetadata(TRACK_METADATA, meta)(target, key, descriptor);
  };
}
