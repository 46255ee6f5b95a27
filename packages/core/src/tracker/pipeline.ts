import { IdstitchError } from '../errors.js';
import type { DropReason, OutgoingMessage, Sink } from '../messages/types.js';

/**
 * Hands messages to the sink and accounts for every one that does not get there, so a sink's counters
 * balance (`tracked = delivered + dropped`) and nothing is lost silently. Also tracks asynchronous work
 * (identity-store calls) that `flush()` must wait for.
 */
export class MessagePipeline {
  private readonly pendingWork = new Set<Promise<unknown>>();

  constructor(
    readonly sink: Sink,
    private readonly report: (error: IdstitchError) => void,
  ) {}

  write(message: OutgoingMessage): void {
    try {
      this.sink.write(message);
    } catch (error) {
      this.report(
        new IdstitchError('delivery_failed', 'the sink threw from write(); the message was lost', {
          cause: error,
        }),
      );
    }
  }

  /** Counts one message that was not produced, and reports why when `error` is given. */
  drop(reason: DropReason, error?: IdstitchError): void {
    try {
      this.sink.recordDrop?.(reason, 1);
    } catch {
      // A sink's bookkeeping must not turn a drop into a crash.
    }
    if (error) this.report(error);
  }

  /** Runs `work`'s continuation off the request path; its failure is reported as `failure`. */
  defer<T>(work: Promise<T>, then: (value: T) => void, failure: string): void {
    const tracked = work.then(then).catch((error: unknown) => {
      this.report(new IdstitchError('store_failed', failure, { cause: error }));
    });
    this.pendingWork.add(tracked);
    void tracked.finally(() => this.pendingWork.delete(tracked));
  }

  /** Resolves when all deferred work has finished (including work it started). */
  async idle(): Promise<void> {
    while (this.pendingWork.size > 0) await Promise.allSettled([...this.pendingWork]);
  }
}
