import { IdstitchError } from '../../errors.js';
import type { Accounting } from './accounting.js';
import type { SinkState } from './admission.js';
import type { Lanes } from './lane.js';

/**
 * Closes started by a signal, in every sink of the process. Kept in a `Symbol.for` slot so that an ESM
 * and a CJS copy of this module share it: the last sink to finish is the one that re-raises.
 */
const SIGNAL_CLOSINGS = Symbol.for('idstitch.mixpanel.signalClosings');

function signalClosings(): Set<Promise<void>> {
  const slots = globalThis as { [SIGNAL_CLOSINGS]?: Set<Promise<void>> };
  slots[SIGNAL_CLOSINGS] ??= new Set();
  return slots[SIGNAL_CLOSINGS];
}

/**
 * Closes a sink when one of `signals` arrives. When this is the only listener of the signal, the
 * signal is raised again once every sink has closed, so the process ends as it would have without us.
 */
export class SignalHandlers {
  readonly #handlers = new Map<NodeJS.Signals, () => void>();

  constructor(signals: readonly NodeJS.Signals[], close: () => Promise<void>) {
    for (const signal of signals) {
      const handler = () => {
        // Removed first, so a second signal gets Node's default behaviour: an impatient operator wins.
        this.remove();
        const closing = close();
        const closings = signalClosings();
        closings.add(closing);
        void closing.then(() => {
          closings.delete(closing);
          // Another sink may still be flushing. If the app listens too, ending the process is its call;
          // otherwise finish what the signal started, with Node's default behaviour.
          if (closings.size === 0 && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
        });
      };
      this.#handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  remove(): void {
    for (const [signal, handler] of this.#handlers) process.removeListener(signal, handler);
    this.#handlers.clear();
  }
}

/** What `close()` works on. */
export interface Closable {
  readonly lanes: Lanes;
  readonly accounts: Accounting;
  setState(state: SinkState): void;
  flush(): Promise<void>;
  /** Cancels requests in flight and backoff waits. */
  abort(): void;
}

/**
 * Flushes until a round ends with nothing new written or `timeoutMs` passes, then stops the timers.
 * At the deadline, what is left is dropped as `shutdown_timeout` and reported once.
 */
export async function closeWithin(sink: Closable, timeoutMs: number): Promise<void> {
  const { lanes, accounts } = sink;
  sink.setState('closing');
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  // Referenced on purpose: the process must stay up until the close has finished or given up.
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      resolve();
    }, timeoutMs);
  });
  try {
    for (;;) {
      const target = accounts.lastSeq;
      await Promise.race([sink.flush(), deadline]);
      // Stop only when a round ended with nothing new written, so the last request's events go too.
      if (timedOut || accounts.lastSeq === target) break;
    }
  } finally {
    clearTimeout(timer);
  }
  sink.setState('closed');
  for (const lane of Object.values(lanes)) {
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = undefined;
  }
  let undelivered = 0;
  if (timedOut) {
    for (const lane of Object.values(lanes)) {
      const left = lane.pending.drain();
      for (const batch of lane.batches) {
        if (!batch.owned) continue;
        batch.owned = false;
        left.push(...batch.messages);
      }
      // Journaled messages stay in the spool for the next process; the others are lost.
      const parked = left.filter((message) => message.spoolId !== undefined);
      const lost = left.filter((message) => message.spoolId === undefined);
      accounts.park(parked);
      undelivered += lost.length;
      accounts.settle(lost, 'shutdown_timeout', lane.endpoint);
    }
    sink.abort();
    if (undelivered > 0) {
      accounts.report(
        new IdstitchError(
          'shutdown_timeout',
          `close() ran out of time after ${timeoutMs} ms; ${undelivered} messages were not delivered`,
          { details: { undelivered, timeoutMs } },
        ),
      );
    }
  }
  accounts.updateKeepAlive();
}
