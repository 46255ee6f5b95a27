import type { Redis } from 'ioredis';
import { backoff, retryPause, sleep, whenReady } from '../connection.js';

/** What the acknowledgements need from their worker. */
export interface AckHooks {
  /** Whether the worker is closed: acknowledging stops. */
  closed(): boolean;
  /** Whether the worker is closing: a failed acknowledgement is not retried in the loop (close() does). */
  closing(): boolean;
  /** These entries are acknowledged and deleted from the stream. */
  acked(ids: readonly string[]): void;
  /** An acknowledgement failed; it is retried. */
  failed(error: unknown): void;
  /** Ends retry pauses when the worker closes. */
  signal: AbortSignal;
}

/**
 * A worker's acknowledgements: entries whose outcome is final are acknowledged and deleted (`XACK`, then
 * `XDEL`) in batches, one round trip for a delivered batch, and retried until Redis takes them. Until
 * then the entries stay pending (and renewed by the worker's heartbeat), so none is lost or taken over.
 */
export class AckQueue {
  #toAck: string[] = [];
  #acking: Promise<void> | undefined;
  #attempt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly group: string,
    private readonly hooks: AckHooks,
  ) {}

  /** Entries waiting for their acknowledgement. */
  get pending(): number {
    return this.#toAck.length;
  }

  /** Queues an entry for acknowledgement. */
  add(id: string): void {
    this.#toAck.push(id);
    this.#run();
  }

  /** Resolves when the acknowledgements due now have been sent, or failed (Redis unreachable). */
  async settled(): Promise<void> {
    while (this.#toAck.length > 0 && this.#acking) {
      const attempt = this.#attempt;
      await Promise.race([this.#acking, sleep(50)]);
      if (this.#attempt > attempt) return;
    }
  }

  /** Keeps trying to acknowledge what is queued while `remaining()` (ms) is above 0: for close(). */
  async finish(remaining: () => number): Promise<void> {
    while (this.#toAck.length > 0 && remaining() > 0) {
      await Promise.race([this.#run(), sleep(remaining())]);
      if (this.#toAck.length > 0) await sleep(Math.min(100, remaining()));
    }
  }

  #run(): Promise<void> {
    this.#acking ??= this.#loop().finally(() => {
      this.#acking = undefined;
    });
    return this.#acking;
  }

  async #loop(): Promise<void> {
    // Let the rest of a delivered batch settle first, so one round trip acknowledges it all.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await whenReady(this.redis, 2000);
    while (this.#toAck.length > 0 && !this.hooks.closed()) {
      const ids = this.#toAck.slice(0, 1000);
      try {
        // Acknowledged, then deleted, so the stream holds only what is not delivered yet. Not in a
        // MULTI: Redis refuses to queue a transaction while it is over maxmemory, but runs XACK and XDEL
        // (they free memory), and that is exactly when delivery must go on. Both are safe to repeat.
        const results = await this.redis
          .pipeline()
          .xack(this.stream, this.group, ...ids)
          .xdel(this.stream, ...ids)
          .exec();
        const failure = results?.find(([error]) => error)?.[0];
        if (!results || failure) throw failure ?? new Error('no reply');
        this.#toAck.splice(0, ids.length);
        this.#attempt = 0;
        this.hooks.acked(ids);
      } catch (error) {
        // The entries stay pending (and renewed by the heartbeat) until the acknowledgement lands.
        this.#attempt += 1;
        this.hooks.failed(error);
        if (this.hooks.closing()) return;
        await retryPause(this.redis, backoff(this.#attempt, 100, 2000), this.hooks.signal);
      }
    }
  }
}
