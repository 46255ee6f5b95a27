import type { CookieWrite } from './cookie/cookie-header.js';
import { IdstitchError } from './errors.js';
import { isAcceptableDeviceId } from './identity/ids.js';
import {
  createIdentityContext,
  type IdentityContext,
  normalizeUserId,
  RequestIdentity,
} from './identity/request-identity.js';
import { LocalSink } from './local/local-sink.js';
import {
  type AdapterDefaults,
  type EngineDefaults,
  type IdstitchOptions,
  type ResolvedOptions,
  resolveOptions,
} from './options.js';
import type { RequestPort } from './request-port.js';
import { FixedIdentity } from './tracker/identity-scope.js';
import { MessagePipeline } from './tracker/pipeline.js';
import { RequestTracker } from './tracker/request-tracker.js';
import type { Tracker } from './tracker/types.js';

/**
 * The embedded defaults, picked here at the composition root: with no `sink`, messages are recorded to a
 * LocalSink (`.idstitch/events.ndjson`) in the configured ID Merge mode, ready for `idstitch report`/`inspect`.
 */
const ENGINE_DEFAULTS: EngineDefaults = {
  sink: (idMerge) => new LocalSink({ mode: idMerge }),
};

/** One request as the core sees it: its tracker, and the cookies to write before the headers go out. */
export interface RequestScope {
  readonly tracker: Tracker;
  /**
   * Reconciles identity one last time (a login or logout in the handler) and returns the cookies to set.
   * Call it once, when the response headers are about to be written; later calls return nothing.
   */
  settle(): CookieWrite[];
}

/**
 * The framework-free engine every adapter wraps: options resolved once, then one {@link RequestScope} per
 * request. Also makes trackers for work outside requests.
 */
export class Idstitch<Req = unknown> {
  readonly options: ResolvedOptions<Req>;
  private readonly identity: IdentityContext<Req>;
  private readonly pipeline: MessagePipeline;

  constructor(options: IdstitchOptions<Req> | undefined, defaults: AdapterDefaults<Req>) {
    this.options = resolveOptions(options, defaults, ENGINE_DEFAULTS);
    this.identity = createIdentityContext(this.options);
    this.pipeline = new MessagePipeline(this.options.sink, this.options.report);
  }

  /** Starts a request. Never throws: a failure degrades to a tracker that drops with a reported reason. */
  handle(port: RequestPort<Req>): RequestScope {
    const identity = new RequestIdentity(this.identity, port);
    const tracker = new RequestTracker(this.options, identity, this.pipeline);
    return {
      tracker,
      settle: () => {
        try {
          const { actions, cookies } = identity.settle();
          tracker.perform(actions);
          return cookies;
        } catch (error) {
          this.options.report(
            new IdstitchError('cookie_write_failed', 'could not settle the identity cookie', {
              cause: error,
            }),
          );
          return [];
        }
      },
    };
  }

  /** A tracker for a known user outside any request (queue jobs, webhooks, cron). */
  forUser(userId: string | number): Tracker {
    const normalized = normalizeUserId(userId);
    if (normalized.userId === undefined) {
      throw new IdstitchError('invalid_id', `forUser() needs a user ID: ${normalized.problem ?? 'got none'}`);
    }
    return new RequestTracker(
      this.options,
      new FixedIdentity({ deviceId: undefined, userId: normalized.userId }),
      this.pipeline,
    );
  }

  /** A tracker for an anonymous device outside any request; `identify()` on it links the device to a user. */
  forDevice(deviceId: string): Tracker {
    if (!isAcceptableDeviceId(deviceId)) {
      throw new IdstitchError('invalid_id', 'forDevice() needs a device ID of 8-64 letters, digits or "-"');
    }
    return new RequestTracker(
      this.options,
      new FixedIdentity({ deviceId, userId: undefined }),
      this.pipeline,
    );
  }

  /** Resolves once every message produced so far has been handed on and the sink has flushed. */
  async flush(): Promise<void> {
    await this.pipeline.idle();
    await this.options.sink.flush();
  }

  /** Flushes, then closes the sink within `timeoutMs`. */
  async close(timeoutMs?: number): Promise<void> {
    await this.pipeline.idle();
    await this.options.sink.close(timeoutMs);
  }
}

/** Creates the engine; adapters call this with their framework's defaults. */
export function createIdstitch<Req>(
  options: IdstitchOptions<Req> | undefined,
  defaults: AdapterDefaults<Req>,
): Idstitch<Req> {
  return new Idstitch(options, defaults);
}
